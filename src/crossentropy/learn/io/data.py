"""Loading data for the command line: scikit-learn's bundled data sets, CSV/Parquet tables, and prediction or label
files (CSV, NPY, Parquet). Every failure is an ``InputValueError`` that names the file and says what to pass instead.

CSV files are read cell by cell as text first, so that a header row is recognised (and not read as data), a short
row is reported as such, and each column then gets the type its cells spell: integer labels stay integers,
text labels stay text.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn import datasets as sk_datasets

from ...core.textio import DEFAULT_ENCODING, check_file, read_csv_cells, read_text_file
from ...rules.errors import InputValueError
from ..choices import DATASETS

BUNDLED = {name: getattr(sk_datasets, f"load_{name}") for name in DATASETS}  # scikit-learn's loaders
PREDICTED = "predicted"  # the column of predicted labels that ``crossentropy predict`` writes before the classes
DELIMITERS = {".csv": ",", ".tsv": "\t"}  # the text tables, by suffix


@dataclass
class Dataset:
    name: str
    X: object  # a pandas DataFrame of the feature columns, by name
    y: np.ndarray
    feature_names: list[str]
    images: bool  # square grayscale images, flattened (the cnn model needs this)


def load_dataset(source: str, target: str | None = None, name: str = "`data`", *, encoding: str = DEFAULT_ENCODING
                 ) -> Dataset:
    """A bundled data set by name (``digits``, ``iris``, ``wine``, ``breast_cancer``), or a CSV/TSV/Parquet file
    (CSV and TSV decoded with ``encoding``) whose ``target`` column holds the labels and whose other columns (numbers,
    text or categories, with missing values allowed) are the features. ``name`` is the option that gave ``source``,
    for messages."""
    import pandas as pd

    if source in BUNDLED:
        if target is not None:
            raise InputValueError(f"the bundled data set {source!r} has its own labels; `target` names the label "
                                  f"column of a file, so leave it out (or pass a file).")
        bunch = BUNDLED[source]()
        names = np.asarray(bunch.target_names)
        y = bunch.target if source == "digits" else names[bunch.target]
        features = [str(f) for f in getattr(bunch, "feature_names", [])]
        features = features or [f"x{i}" for i in range(bunch.data.shape[1])]
        X = pd.DataFrame(bunch.data.astype(np.float64), columns=features)
        return Dataset(source, X, y, features, images=source == "digits")
    path = Path(source)
    if not path.suffix:
        raise InputValueError(f"unknown data set {source!r}: use one of {', '.join(BUNDLED)}, or a .csv, .tsv or "
                              f".parquet file.")
    frame = read_table(path, name, encoding=encoding)
    if target is None:
        raise InputValueError(f"`target` is required with a file: name the label column, one of "
                              f"{list(frame.columns)}.")
    if target not in frame.columns:
        raise InputValueError(f"column {target!r} is not in {path.name}; its columns are {list(frame.columns)}.")
    features = frame.drop(columns=[target])
    if features.shape[1] == 0:
        raise InputValueError(f"{path.name} has no feature columns besides the target {target!r}.")
    if frame[target].isna().any():
        raise InputValueError(f"the target column {target!r} has missing values; drop or fill those rows.")
    features.columns = [str(c) for c in features.columns]
    return Dataset(path.stem, features, frame[target].to_numpy(), list(features.columns), False)


def read_table(path: Path, name: str, *, encoding: str = DEFAULT_ENCODING):
    """A headed CSV, TSV (decoded with ``encoding``) or Parquet table as a DataFrame with at least one row."""
    import io

    import pandas as pd

    path = check_file(path, name)
    suffix = path.suffix.lower()
    if suffix not in (*DELIMITERS, ".parquet", ".pq"):
        raise InputValueError(f"{name} {path.name}: unsupported file type {suffix!r}; use .csv, .tsv or .parquet.")
    text = read_text_file(path, name, encoding=encoding) if suffix in DELIMITERS else None
    try:
        frame = pd.read_parquet(path) if text is None else pd.read_csv(io.StringIO(text), sep=DELIMITERS[suffix])
    except (pd.errors.ParserError, pd.errors.EmptyDataError, OSError, ImportError, ValueError) as exc:
        raise InputValueError(f"cannot read {name} from {path}: {str(exc).splitlines()[0]}") from None
    if frame.shape[0] == 0:
        raise InputValueError(f"{name} {path} has a header but no data rows.")
    return frame


def load_array(path_text: str, name: str, *, n_rows: int | None = None, ignore=(), encoding: str = DEFAULT_ENCODING
               ) -> tuple[np.ndarray, list[str] | None]:
    """A 1-D or 2-D array and its column names (None when the file has none) from ``.npy`` (never unpickled),
    ``.csv``/``.tsv`` (decoded with ``encoding``) or ``.parquet`` (its column names), without the columns named in
    ``ignore``. A CSV's first row is a header when it is not all numbers, or when it is distinct integers (class
    labels such as ``0,1,2``) and the file has one row more than ``n_rows``. Numeric columns become int64 or
    float64, as their cells spell them; text stays text."""
    path = check_file(path_text, name)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return _table_shape(_load_npy(path, name), path, name), None
    if suffix in DELIMITERS:
        cells = _csv_cells(path, name, encoding)
        first = cells[0].tolist()
        header = not all(_is_number(v) for v in first) or (
            cells.shape[0] == (n_rows or 0) + 1 and len(set(first)) == len(first)
            and all(v.lstrip("-").isdigit() for v in first))
        arrays, columns = _typed_columns(cells, header, path, name)
    elif suffix in (".parquet", ".pq"):
        frame = read_table(path, name)
        arrays, columns = [frame[c].to_numpy() for c in frame.columns], [str(c) for c in frame.columns]
    else:
        raise InputValueError(f"{name} {path.name}: unsupported file type {suffix!r}; use .csv, .tsv, .npy or "
                              f".parquet.")
    if columns is not None and ignore:
        kept = [j for j, c in enumerate(columns) if c.strip() not in ignore]
        if not kept:
            raise InputValueError(f"{name} {path} holds only the column(s) {columns}, and no scores.")
        arrays, columns = [arrays[j] for j in kept], [columns[j] for j in kept]
    array, columns = _stack(arrays, columns)
    return _table_shape(array, path, name), columns


def load_labels(path_text: str, name: str, *, column: str | None = None, classes=None, n_rows: int | None = None,
                encoding: str = DEFAULT_ENCODING):
    """The labels in ``path_text``: its only column, or the column named ``column`` (of a CSV, only that column is
    read). A headed file's index column (``pandas.to_csv``'s default) is skipped. A CSV's first row is a header when
    it holds text over a column of numbers, when ``column`` is given or the file has several columns, or, for one
    column of text, when its first cell is not one of ``classes`` (the class names, when known) or the file has one
    row more than ``n_rows``."""
    path = check_file(path_text, name)
    if path.suffix.lower() in DELIMITERS:
        cells = _csv_cells(path, name, encoding)
        first = str(cells[0, 0]).strip()
        header = _has_header(cells) or column is not None or cells.shape[1] > 1 or (
            first not in {str(c) for c in classes} if classes is not None else cells.shape[0] == (n_rows or 0) + 1)
        named = _named_columns(cells[0].tolist()) if header else []
        if header and column is None and len(named) > 1:  # before the cells are typed: gaps elsewhere do not matter
            raise InputValueError(f"{name} {path} has columns {named}; say which holds the labels with "
                                  f"`labels_column`.")
        if header and column is not None:  # only the named column: gaps in the others do not matter
            names = cells[0].tolist()
            if column not in names:
                hint = "" if _has_header(cells) else "; if the file has no header row, leave out `labels_column`"
                raise InputValueError(f"{name} {path} has no column {column!r}; its columns are {names}{hint}.")
            cells = cells[:, [names.index(column)]]
        arrays, columns = _typed_columns(cells, header, path, name)
    else:
        array, columns = load_array(path_text, name, encoding=encoding)
        arrays = [array] if array.ndim == 1 else list(array.T)
    if columns is None:
        if column is not None:
            raise InputValueError(f"{name} {path} has no header, so it has no column {column!r}; drop "
                                  f"`labels_column` or add a header row.")
        if len(arrays) != 1:
            raise InputValueError(f"{name} must hold one label per row, but {path} has {len(arrays)} columns and no "
                                  f"header; add a header and pass `labels_column`.")
        return arrays[0]
    named = _named_columns(columns)
    wanted = column if column is not None else (named[0] if len(named) == 1 else None)
    if wanted is None:
        raise InputValueError(f"{name} {path} has columns {columns}; say which holds the labels with `labels_column`.")
    if wanted not in columns:
        raise InputValueError(f"{name} {path} has no column {wanted!r}; its columns are {columns}.")
    return arrays[columns.index(wanted)]


def _named_columns(columns: list[str]) -> list[str]:
    """The header's names but the index column ``pandas.to_csv`` writes unnamed (read back as ``Unnamed: 0``)."""
    return [c for c in columns if c and not c.startswith("Unnamed:")]


def load_predictions(proba: str, labels: str, *, labels_column: str | None = None, name: str = "`proba`",
                     encoding: str = DEFAULT_ENCODING):
    """What ``crossentropy eval`` and ``calibrate`` read: the scores in ``proba`` (the option ``name``), their column
    names (None without a header), and the labels in ``labels``, each file's header recognised with the help of the
    other (the row counts, and the class names). A ``predicted`` column (``crossentropy predict`` writes one) is
    not a score: it is skipped."""
    kw = {"ignore": (PREDICTED,), "encoding": encoding}
    scores, columns = load_array(proba, name, **kw)
    y = load_labels(labels, "`labels`", column=labels_column, classes=columns, n_rows=scores.shape[0],
                    encoding=encoding)
    if columns is None and scores.shape[0] == y.shape[0] + 1:  # a header of integer class labels
        scores, columns = load_array(proba, name, n_rows=y.shape[0], **kw)
    return scores, columns, y


def _table_shape(array: np.ndarray, path: Path, name: str) -> np.ndarray:
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim not in (1, 2) or array.shape[0] == 0:
        raise InputValueError(f"{name} must be a non-empty 1-D or 2-D table, but {path} holds shape {array.shape}.")
    return array


def _stack(arrays: list[np.ndarray], columns):
    numeric = all(a.dtype.kind in "iuf" for a in arrays)
    dtype = np.result_type(*arrays) if numeric else object
    return np.column_stack([a.astype(dtype) for a in arrays]), columns


def _load_npy(path: Path, name: str) -> np.ndarray:
    import zipfile

    if path.stat().st_size == 0:
        raise InputValueError(f"cannot read {name} from {path}: the file is empty; save it with np.save.")
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise InputValueError(f"{name} {path} holds Python objects, which are not loaded (that would run "
                                  f"pickle); save numbers, or text as a fixed-width string array "
                                  f"(np.asarray(x, dtype=str)).") from None
        raise InputValueError(f"cannot read {name} from {path}: {exc}") from None
    except (EOFError, OSError, zipfile.BadZipFile) as exc:
        reason = (str(exc).splitlines() or ["unreadable"])[0]
        raise InputValueError(f"cannot read {name} from {path}: {reason}; save it with np.save.") from None


def _csv_cells(path: Path, name: str, encoding: str) -> np.ndarray:
    """The cells of a CSV / TSV file (``textio.read_csv_cells``) as a 2-D array of strings."""
    rows = read_csv_cells(path, name, encoding=encoding, delimiter=DELIMITERS[path.suffix.lower()])
    if not rows:
        raise InputValueError(f"{name} {path} is empty.")
    return np.array(rows, dtype=str)


def _has_header(cells: np.ndarray) -> bool:
    """The first row is a header when, in some column, it is text over cells that are all numbers."""
    return cells.shape[0] > 1 and any(not _is_number(cells[0, j]) and all(_is_number(v) for v in cells[1:, j])
                                      for j in range(cells.shape[1]))


def _typed_columns(cells: np.ndarray, header: bool, path: Path, name: str):
    """Each column of text cells as int64 when every cell is an integer, float64 when every cell is a number, else
    text; and the header's names (None without a header)."""
    body = cells[1:] if header else cells
    if body.shape[0] == 0:
        raise InputValueError(f"{name} {path} has a header but no data rows.")
    empty = np.argwhere(body == "")
    if empty.size:
        row, col = (int(v) for v in empty[0])
        raise InputValueError(f"{name} {path}: line {row + 1 + header}, column {col + 1} is empty (a missing value, "
                              f"or a row shorter than the others).")
    return [_typed(body[:, j]) for j in range(body.shape[1])], (cells[0].tolist() if header else None)


def _typed(column: np.ndarray) -> np.ndarray:
    for kind in (np.int64, np.float64):
        try:
            return np.array([kind(v) for v in column], dtype=kind)
        except (ValueError, OverflowError):
            continue
    return column


def _is_number(text) -> bool:
    try:
        float(text)
    except (TypeError, ValueError):
        return False
    return True


def write_probabilities(proba: np.ndarray, labels, path) -> Path:
    """Write ``proba`` to ``path``: ``.npy``, or a CSV whose columns are named by class label (one column, the
    positive class, for a 1-D binary ``proba``), every value to full precision (``%.17g``)."""
    path = Path(path)
    if path.suffix.lower() == ".npy":
        np.save(path, proba)
        return path
    names = [str(v) for v in labels]
    header = names[1:] if proba.ndim == 1 else names
    np.savetxt(path, proba.reshape(len(proba), -1), delimiter=",", header=",".join(header), comments="",
               fmt="%.17g")
    return path
