"""Loading data for the command line: scikit-learn's bundled data sets, CSV/Parquet tables, and prediction or label
files (CSV, NPY, Parquet). Every failure is a ValueError that says what to pass instead."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn import datasets as sk_datasets

from ..rules.errors import InputValueError

BUNDLED = {"digits": sk_datasets.load_digits, "iris": sk_datasets.load_iris, "wine": sk_datasets.load_wine,
           "breast_cancer": sk_datasets.load_breast_cancer}


@dataclass
class Dataset:
    name: str
    X: np.ndarray
    y: np.ndarray
    feature_names: list[str]
    images: bool  # square grayscale images, flattened (the cnn model needs this)


def load_dataset(source: str, target: str | None = None) -> Dataset:
    """A bundled data set by name (``digits``, ``iris``, ``wine``, ``breast_cancer``), or a CSV/Parquet file whose
    ``target`` column holds the labels and whose other (numeric) columns are the features."""
    if source in BUNDLED:
        bunch = BUNDLED[source]()
        names = np.asarray(bunch.target_names)
        y = bunch.target if source == "digits" else names[bunch.target]
        features = [str(f) for f in getattr(bunch, "feature_names", [])]
        features = features or [f"x{i}" for i in range(bunch.data.shape[1])]
        return Dataset(source, bunch.data.astype(np.float64), y, features, images=source == "digits")
    path = Path(source)
    if not path.suffix:
        raise InputValueError(f"unknown data set {source!r}: use one of {', '.join(BUNDLED)}, or a .csv or "
                              f".parquet file.")
    frame = _read_table(path)
    if target is None:
        raise InputValueError(f"--target is required with a file: name the label column, one of {list(frame.columns)}.")
    if target not in frame.columns:
        raise InputValueError(f"column {target!r} is not in {path.name}; its columns are {list(frame.columns)}.")
    features = frame.drop(columns=[target])
    if features.shape[1] == 0:
        raise InputValueError(f"{path.name} has no feature columns besides the target {target!r}.")
    text = [c for c in features.columns if features[c].dtype.kind not in "iufb"]
    if text:
        raise InputValueError(f"feature columns must be numeric, but {text} are not; encode them (e.g. one-hot) first.")
    y = frame[target].to_numpy()
    if frame[target].isna().any():
        raise InputValueError(f"the target column {target!r} has missing values; drop or fill those rows.")
    return Dataset(path.stem, features.to_numpy(dtype=np.float64), y, [str(c) for c in features.columns], False)


def _read_table(path: Path):
    import pandas as pd

    if not path.exists():
        raise InputValueError(f"no such file: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            return pd.read_csv(path)
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, OSError, ImportError) as exc:
        raise InputValueError(f"cannot read {path}: {str(exc).splitlines()[0]}") from None
    raise InputValueError(f"{path.name}: unsupported file type {suffix!r}; use .csv, .parquet or .npy.")


def load_array(path_text: str, name: str) -> np.ndarray:
    """A 1-D or 2-D array from .npy (no pickle), .csv (a header row is skipped when it is not numeric) or
    .parquet. String labels stay strings."""
    path = Path(path_text)
    if path.suffix.lower() == ".npy":
        if not path.exists():
            raise InputValueError(f"no such file for {name}: {path}")
        try:
            array = np.load(path, allow_pickle=False)
        except ValueError as exc:
            raise InputValueError(f"cannot read {name} from {path}: {exc}") from None
    else:
        import pandas as pd

        if path.suffix.lower() == ".csv":
            if not path.exists():
                raise InputValueError(f"no such file for {name}: {path}")
            frame = pd.read_csv(path, header=None)
            if len(frame) > 1 and not _numeric(frame.iloc[0]) and _numeric(frame.iloc[1]):
                frame = frame.iloc[1:]
        else:
            frame = _read_table(path)
        array = frame.to_numpy()
        if all(_numeric(frame[c]) for c in frame.columns):
            array = array.astype(np.float64)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim not in (1, 2) or array.shape[0] == 0:
        raise InputValueError(f"{name} must be a non-empty 1-D or 2-D table, but {path} holds shape {array.shape}.")
    return array


def _numeric(values) -> bool:
    import pandas as pd

    return bool(pd.to_numeric(pd.Series(values), errors="coerce").notna().all())
