"""TablePreprocessor: turn a table with numeric and text columns, some of them missing, into the float matrix a
classifier needs, inside the model's pipeline so that a saved model applies the same steps to new data.

Per column, fitted on the training rows:

- numeric: missing values are replaced by the column's median, then the column is standardized,
  ``z = (x - mean) / scale`` (``scale`` is the standard deviation, 1 for a constant column), as scikit-learn's
  ``SimpleImputer(strategy="median")`` + ``StandardScaler``. The moments are computed on ``x / max|x|`` so that
  features near 1e300 do not overflow;
- categorical or boolean: missing values become the most frequent value, then the column is one-hot encoded
  over the categories seen in training; a category not seen in training encodes as all zeros, as
  ``OneHotEncoder(handle_unknown="ignore")``, with a ``UserWarning`` that names the column and the
  category;
- free text: TF-IDF of word and character n-grams (``text.TfidfText``, at most ``max_features`` per column); a
  missing value is the empty text, a row of zeros. With a text column, ``transform`` returns a CSR sparse matrix.

Which columns are which (``column_roles``): integer and float columns are numeric. Of the others (strings,
categories, booleans), a column is

- dropped as a *date* when at least 90% of its values look like dates or timestamps (``2007-11-11``,
  ``11/11/2007``, ``2007-11-11T09:30``): a date's value rarely carries over to new data, and a split at random
  would leak the future into the past;
- dropped as an *ID* when it has at least 20 rows, none missing, every value distinct and fewer than 3 tokens
  per value on average (``N1A1``, ``a7f3-0c2e``): one-hot encoding it would give each training row its own
  feature;
- *text* when its values average at least 3 tokens (``text.tokenize``: a character of Chinese or Japanese counts
  as one) and at least half of them are distinct, or when they average at least 6 tokens;
- categorical otherwise.

``text_columns``, ``categorical_columns`` and ``drop_columns`` override the rule by name (a numeric column may be
made categorical or text too). ``note_`` is a one-line account of the choice, for people.

Columns are found by name: their order in new data does not matter, extra columns are ignored, and a missing one
is an ``InputValueError`` naming it. The fitted state is a few arrays and lists of strings, so ``save_model`` keeps
it without pickle.
"""

from __future__ import annotations

import math
import re
import warnings

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from ...rules.errors import InputValueError
from ..choices import TRAIN_DEFAULTS
from .text import TfidfText, tokenize

NUMERIC, CATEGORY, TEXT = "numeric", "category", "text"
DATE = re.compile(r"^\s*(\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4})"
                  r"([ T]\d{1,2}:\d{2}(:\d{2})?.*)?\s*$")


def as_frame(X):
    """``X`` as a pandas DataFrame: a DataFrame stays as it is; a 2-D array gets columns ``x0, x1, ...``."""
    import pandas as pd

    if isinstance(X, pd.DataFrame):
        return X
    a = np.asarray(X)
    if a.ndim != 2:
        raise InputValueError(f"X must be a table (a DataFrame or a 2-D array), but got shape {a.shape}.")
    return pd.DataFrame(a, columns=[f"x{i}" for i in range(a.shape[1])])


def column_kind(series) -> str:
    """``"numeric"`` for integer and float columns, ``"category"`` for text, categorical and boolean ones."""
    return NUMERIC if series.dtype.kind in "iuf" else CATEGORY


def column_roles(frame, *, text_columns=(), categorical_columns=(), drop_columns=()) -> dict[str, str]:
    """The role of each column of ``frame`` by name: ``"numeric"``, ``"category"``, ``"text"``, or why it is dropped
    (``"dropped: drop_columns"``, ``"dropped: date"``, ``"dropped: id"``), by the rule of the module doc.

    >>> import pandas as pd
    >>> frame = pd.DataFrame({"id": [f"N{i}A" for i in range(20)], "day": ["2007-11-1"] * 20, "x": range(20),
    ...                       "note": [f"good bird number {i}" for i in range(20)], "c": ["a", "b"] * 10})
    >>> column_roles(frame)
    {'id': 'dropped: id', 'day': 'dropped: date', 'x': 'numeric', 'note': 'text', 'c': 'category'}
    """
    names = [str(c) for c in frame.columns]
    given = {"text_columns": text_columns, "categorical_columns": categorical_columns, "drop_columns": drop_columns}
    chosen: dict[str, str] = {}
    for arg, role in zip(given, (TEXT, CATEGORY, "dropped: drop_columns"), strict=True):
        for name in given[arg] or ():
            if name not in names:
                raise InputValueError(f"`{arg}` names {name!r}, which is not a feature column (the label column is "
                                      f"not one); the feature columns are {names}.")
            if name in chosen:
                raise InputValueError(f"column {name!r} is given two roles ({chosen[name]} and {role}); give it one.")
            chosen[name] = role
    return {name: chosen.get(name) or _guess_role(frame[column]) for name, column in zip(names, frame.columns,
                                                                                        strict=True)}


def _guess_role(series) -> str:
    if column_kind(series) == NUMERIC:
        return NUMERIC
    if series.dtype.kind == "b":
        return CATEGORY
    values = [str(v) for v in series[series.notna()]]
    if not values:
        return CATEGORY
    if np.mean([bool(DATE.match(v)) for v in values]) >= 0.9:
        return "dropped: date"
    distinct = len(set(values))
    tokens = float(np.mean([len(tokenize(v)) for v in values]))
    if len(series) >= 20 and distinct == len(series) and tokens < 3:
        return "dropped: id"
    if (tokens >= 3 and distinct >= 0.5 * len(values)) or tokens >= 6:
        return TEXT
    return CATEGORY


def describe_roles(roles: dict[str, str]) -> str:
    """A one-line note of ``column_roles``' choice, for people.

    >>> describe_roles({"a": "numeric", "b": "text", "id": "dropped: id"}).split("; ")[:2]
    ['columns: 1 numeric (a), 1 text (b)', 'dropped id (ID: one distinct value per row)']
    """
    parts = []
    for role, label in ((NUMERIC, "numeric"), (CATEGORY, "categorical"), (TEXT, "text")):
        names = [n for n, r in roles.items() if r == role]
        if names:
            shown = ", ".join(names[:6]) + (f", ... {len(names) - 6} more" if len(names) > 6 else "")
            parts.append(f"{len(names)} {label} ({shown})")
    why = {"dropped: id": "ID: one distinct value per row", "dropped: date": "a date",
           "dropped: drop_columns": "`drop_columns`"}
    dropped = [f"{n} ({why[r]})" for n, r in roles.items() if r.startswith("dropped")]
    return "columns: " + ", ".join(parts) + (f"; dropped {', '.join(dropped)}" if dropped else "") \
        + "; override with `text_columns`, `categorical_columns` or `drop_columns`"


def _numeric_values(series, name: str) -> np.ndarray:
    import pandas as pd

    values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    bad = np.isnan(values) & series.notna().to_numpy()
    if bad.any():
        raise InputValueError(f"column {name!r} held numbers in training, but row {int(np.flatnonzero(bad)[0])} "
                              f"holds {series.iloc[int(np.flatnonzero(bad)[0])]!r}; fix that value or leave it empty.")
    if np.isinf(values).any():
        raise InputValueError(f"column {name!r} has an infinite value in row {int(np.flatnonzero(np.isinf(values))[0])}"
                              f"; replace it with a finite number, or leave it empty to have it imputed.")
    return values


def _text_values(series) -> np.ndarray:
    values = series.astype(object).to_numpy()
    missing = series.isna().to_numpy()
    return np.array(["" if m else str(v) for v, m in zip(values, missing, strict=True)], dtype=object), missing


class TablePreprocessor(TransformerMixin, BaseEstimator):
    """Median-impute and standardize numeric columns, mode-impute and one-hot encode categorical ones, TF-IDF text
    columns, drop IDs and dates (module doc).

    Parameters
    ----------
    text_columns, categorical_columns, drop_columns : list of str or None
        Column names that are free text, categorical, or dropped, whatever the rule of ``column_roles`` says.
    max_features : int, default=20000
        The most n-grams each text column keeps.

    >>> import pandas as pd
    >>> frame = pd.DataFrame({"size": [1.0, None, 3.0], "colour": ["red", "blue", None]})
    >>> TablePreprocessor().fit(frame).transform(frame[["colour", "size"]]).round(3).tolist()
    [[-1.225, 0.0, 1.0], [0.0, 1.0, 0.0], [1.225, 1.0, 0.0]]
    """

    def __init__(self, *, text_columns=None, categorical_columns=None, drop_columns=None,
                 max_features=TRAIN_DEFAULTS["max_features"]):
        self.text_columns = text_columns
        self.categorical_columns = categorical_columns
        self.drop_columns = drop_columns
        self.max_features = max_features

    def fit(self, X, y=None):
        frame = as_frame(X)
        if frame.shape[0] == 0:
            raise InputValueError("X has no rows; the preprocessing needs at least one training row.")
        names = [str(c) for c in frame.columns]
        if len(set(names)) != len(names):
            raise InputValueError(f"X has duplicate column names {sorted({n for n in names if names.count(n) > 1})}; "
                                  f"give every column its own name.")
        roles = column_roles(frame, text_columns=self.text_columns, categorical_columns=self.categorical_columns,
                             drop_columns=self.drop_columns)
        self.note_ = describe_roles(roles)
        self.dropped_ = {n: r.removeprefix("dropped: ") for n, r in roles.items() if r.startswith("dropped")}
        if len(self.dropped_) == len(names):
            raise InputValueError(f"every column of X is dropped ({self.note_}); keep at least one with "
                                  f"`text_columns` or `categorical_columns`.")
        kept = [c for c in frame.columns if str(c) not in self.dropped_]
        self.feature_names_in_ = np.array([str(c) for c in kept], dtype=object)
        self.n_features_in_ = len(kept)
        self.kinds_ = [roles[str(c)] for c in kept]
        self.center_, self.scale_, self.fill_, self.categories_, self.text_ = [], [], [], [], []
        for column, kind in zip(kept, self.kinds_, strict=True):
            if kind == NUMERIC:
                self._fit_numeric(_numeric_values(frame[column], str(column)), str(column))
            elif kind == TEXT:
                self._fit_text(frame[column])
            else:
                self._fit_category(frame[column], str(column))
            if kind != TEXT:
                self.text_.append(None)
        return self

    def _fit_text(self, series) -> None:
        text, _ = _text_values(series)
        self.text_.append(TfidfText(max_features=self.max_features).fit(text))
        self.fill_.append("")
        self.center_.append(0.0)
        self.scale_.append(1.0)
        self.categories_.append([])

    def _fit_numeric(self, x: np.ndarray, name: str) -> None:
        present = x[~np.isnan(x)]
        if present.size == 0:
            raise InputValueError(f"column {name!r} has no values at all; drop it.")
        median = float(np.median(present))
        big = float(np.abs(present).max()) or 1.0
        unit = np.where(np.isnan(x), median, x) / big  # |unit| <= 1: the moments cannot overflow
        mean, std = float(unit.mean()), float(unit.std())
        self.fill_.append(median)
        self.center_.append(mean * big)
        self.scale_.append(std * big if std * big > 0 else 1.0)
        self.categories_.append([])

    def _fit_category(self, series, name: str) -> None:
        text, missing = _text_values(series)
        values, counts = np.unique(text[~missing], return_counts=True)
        if values.size == 0:
            raise InputValueError(f"column {name!r} has no values at all; drop it.")
        self.fill_.append(str(values[np.argmax(counts)]))
        self.center_.append(0.0)
        self.scale_.append(1.0)
        self.categories_.append([str(v) for v in values])

    def transform(self, X):
        """The feature matrix: a float64 array, or a CSR matrix when there is a text column."""
        check_is_fitted(self)
        frame = as_frame(X)
        names = {str(c): c for c in frame.columns}
        missing = [n for n in self.feature_names_in_ if n not in names]
        if missing:
            raise InputValueError(f"the data lacks feature column(s) {missing} that the model was trained on; "
                                  f"its columns are {list(names)}.")
        blocks = []
        for i, name in enumerate(self.feature_names_in_):
            series = frame[names[name]]
            if self.kinds_[i] == NUMERIC:
                x = _numeric_values(series, name)
                x = np.where(np.isnan(x), self.fill_[i], x)
                blocks.append(((x - self.center_[i]) / self.scale_[i])[:, None])
            elif self.kinds_[i] == TEXT:
                blocks.append(self.text_[i].transform(_text_values(series)[0]))
            else:
                text, absent = _text_values(series)
                text[absent] = self.fill_[i]
                unseen = sorted(set(text.tolist()) - set(self.categories_[i]))
                if unseen:
                    warnings.warn(f"column {name!r} has {len(unseen)} categor{'y' if len(unseen) == 1 else 'ies'} "
                                  f"not seen in training (such as {unseen[0]!r}); those rows encode it as all "
                                  f"zeros.", UserWarning, stacklevel=2)
                blocks.append((text[:, None] == np.array(self.categories_[i], dtype=object)).astype(np.float64))
        if TEXT in self.kinds_:
            from scipy import sparse

            return sparse.hstack(blocks, format="csr", dtype=np.float64)
        return np.hstack(blocks) if blocks else np.zeros((len(frame), 0))

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        check_is_fitted(self)
        out = []
        for name, kind, cats, text in zip(self.feature_names_in_, self.kinds_, self.categories_, self.text_,
                                          strict=True):
            out += [name] if kind == NUMERIC else [f"{name}:{g}" for g in text.vocabulary_] if kind == TEXT \
                else [f"{name}={c}" for c in cats]
        return np.array(out, dtype=object)

    # ------------------------------------------------------------------------------------------- persistence
    def to_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        """The fitted state as JSON-safe lists and float arrays (see ``save_model``)."""
        check_is_fitted(self)
        columns = [{"name": n, "kind": k, "fill": f, "categories": c}
                   for n, k, f, c in zip(self.feature_names_in_, self.kinds_, self.fill_, self.categories_,
                                         strict=True)]
        arrays = {"table.center": np.array(self.center_, dtype=np.float64),
                  "table.scale": np.array(self.scale_, dtype=np.float64)}
        for i, text in enumerate(self.text_):
            if text is not None:
                columns[i]["tfidf"], arrays[f"table.idf.{i}"] = text.to_state()
        info = {"columns": columns}
        if self.dropped_:
            info["dropped"] = self.dropped_
        return info, arrays

    @classmethod
    def from_state(cls, info: dict, arrays: dict) -> TablePreprocessor:
        """Rebuild from ``to_state``'s output, refusing anything inconsistent with an ``InputValueError``."""
        columns = info.get("columns") if isinstance(info, dict) else None
        if not isinstance(columns, list) or not columns:
            raise InputValueError("the saved preprocessing has no column list.")
        center, scale = arrays.get("table.center"), arrays.get("table.scale")
        if center is None or scale is None:
            raise InputValueError("the saved preprocessing lacks its centers or scales (table.center, table.scale).")
        if center.shape != (len(columns),) or scale.shape != (len(columns),):
            raise InputValueError(f"the saved preprocessing describes {len(columns)} columns, but its centers and "
                                  f"scales have shapes {center.shape} and {scale.shape}.")
        if center.dtype != np.float64 or scale.dtype != np.float64:
            raise InputValueError(f"the saved preprocessing's centers and scales must be float64 (as saved), but "
                                  f"they are {center.dtype} and {scale.dtype}; save the model again.")
        if not (np.isfinite(center).all() and np.isfinite(scale).all() and (scale > 0).all()):
            raise InputValueError("the saved preprocessing has a non-finite center or a scale that is not positive.")
        dropped = info.get("dropped", {})
        if isinstance(dropped, dict):  # files saved before the reason was named by the parameter
            dropped = {n: "drop_columns" if r == "--drop" else r for n, r in dropped.items()}
        if not isinstance(dropped, dict) or not all(r in ("id", "date", "drop_columns") for r in dropped.values()):
            raise InputValueError(f"the saved preprocessing's dropped columns are malformed: {dropped!r:.80}")
        self = cls()
        self.dropped_ = dict(dropped)
        self.feature_names_in_, self.kinds_, self.fill_, self.categories_, self.text_ = [], [], [], [], []
        for i, col in enumerate(columns):
            if not isinstance(col, dict) or not isinstance(col.get("name"), str) \
                    or col.get("kind") not in (NUMERIC, CATEGORY, TEXT) or not isinstance(col.get("categories"), list):
                raise InputValueError(f"saved preprocessing column {i} is malformed: {col!r:.80}")
            cats, fill = col["categories"], col.get("fill")
            self.text_.append(TfidfText.from_state(col.get("tfidf"), arrays.get(f"table.idf.{i}"))
                              if col["kind"] == TEXT else None)
            if col["kind"] == NUMERIC:  # a finite number (not a bool); no categories
                fill_ok = isinstance(fill, (int, float)) and not isinstance(fill, bool) and math.isfinite(fill) \
                    and not cats
            elif col["kind"] == TEXT:  # TF-IDF features: no fill, no categories, neither centered nor scaled
                fill_ok = fill == "" and not cats and center[i] == 0 and scale[i] == 1
            else:  # distinct text categories holding the fill; one-hot columns are neither centered nor scaled
                fill_ok = all(isinstance(c, str) for c in cats) and len(set(cats)) == len(cats) and fill in cats \
                    and center[i] == 0 and scale[i] == 1
            if not fill_ok:
                raise InputValueError(f"saved preprocessing column {col['name']!r} has an inconsistent fill value, "
                                      f"category list, center or scale; save the model again.")
            self.feature_names_in_.append(col["name"])
            self.kinds_.append(col["kind"])
            self.fill_.append(col["fill"])
            self.categories_.append(cats)
        if len(set(self.feature_names_in_)) != len(columns):
            raise InputValueError("the saved preprocessing names a column twice.")
        self.feature_names_in_ = np.array(self.feature_names_in_, dtype=object)
        self.n_features_in_ = len(columns)
        self.center_, self.scale_ = center.tolist(), scale.tolist()
        self.note_ = describe_roles({**dict(zip(self.feature_names_in_, self.kinds_, strict=True)),
                                     **{n: f"dropped: {r}" for n, r in self.dropped_.items()}})
        return self

    @property
    def n_features_out_(self) -> int:
        return sum(1 if k == NUMERIC else len(t.vocabulary_) if k == TEXT else len(c)
                   for k, c, t in zip(self.kinds_, self.categories_, self.text_, strict=True))

