"""TablePreprocessor: turn a table with numeric and text columns, some of them missing, into the float matrix a
classifier needs, inside the model's pipeline so that a saved model applies the same steps to new data.

Per column, fitted on the training rows:

- numeric: missing values are replaced by the column's median, then the column is standardized,
  ``z = (x - mean) / scale`` (``scale`` is the standard deviation, 1 for a constant column), as scikit-learn's
  ``SimpleImputer(strategy="median")`` + ``StandardScaler``. The moments are computed on ``x / max|x|`` so that
  features near 1e300 do not overflow;
- text, categorical or boolean: missing values become the most frequent value, then the column is one-hot encoded
  over the categories seen in training; a category not seen in training encodes as all zeros, as
  ``OneHotEncoder(handle_unknown="ignore")``, with a ``UserWarning`` that names the column and the category.

Columns are found by name: their order in new data does not matter, extra columns are ignored, and a missing one
is an ``InputValueError`` naming it. The fitted state is a few arrays and lists of strings, so ``save_model`` keeps
it without pickle.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from ..rules.errors import InputValueError

NUMERIC, CATEGORY = "numeric", "category"


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
    """Median-impute and standardize numeric columns; mode-impute and one-hot encode the others (module doc).

    >>> import pandas as pd
    >>> frame = pd.DataFrame({"size": [1.0, None, 3.0], "colour": ["red", "blue", None]})
    >>> TablePreprocessor().fit(frame).transform(frame[["colour", "size"]]).round(3).tolist()
    [[-1.225, 0.0, 1.0], [0.0, 1.0, 0.0], [1.225, 1.0, 0.0]]
    """

    def fit(self, X, y=None):
        frame = as_frame(X)
        if frame.shape[0] == 0:
            raise InputValueError("X has no rows; the preprocessing needs at least one training row.")
        names = [str(c) for c in frame.columns]
        if len(set(names)) != len(names):
            raise InputValueError(f"X has duplicate column names {sorted({n for n in names if names.count(n) > 1})}; "
                                  f"give every column its own name.")
        self.feature_names_in_ = np.array(names, dtype=object)
        self.n_features_in_ = len(names)
        self.kinds_ = [column_kind(frame[c]) for c in frame.columns]
        self.center_, self.scale_, self.fill_, self.categories_ = [], [], [], []
        for column, kind in zip(frame.columns, self.kinds_, strict=True):
            if kind == NUMERIC:
                self._fit_numeric(_numeric_values(frame[column], str(column)), str(column))
            else:
                self._fit_category(frame[column], str(column))
        return self

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

    def transform(self, X) -> np.ndarray:
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
            else:
                text, absent = _text_values(series)
                text[absent] = self.fill_[i]
                unseen = sorted(set(text.tolist()) - set(self.categories_[i]))
                if unseen:
                    warnings.warn(f"column {name!r} has {len(unseen)} categor{'y' if len(unseen) == 1 else 'ies'} "
                                  f"not seen in training (such as {unseen[0]!r}); those rows encode it as all "
                                  f"zeros.", UserWarning, stacklevel=2)
                blocks.append((text[:, None] == np.array(self.categories_[i], dtype=object)).astype(np.float64))
        return np.hstack(blocks) if blocks else np.zeros((len(frame), 0))

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        check_is_fitted(self)
        out = []
        for name, kind, cats in zip(self.feature_names_in_, self.kinds_, self.categories_, strict=True):
            out += [name] if kind == NUMERIC else [f"{name}={c}" for c in cats]
        return np.array(out, dtype=object)

    # ------------------------------------------------------------------------------------------- persistence
    def to_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        """The fitted state as JSON-safe lists and float arrays (see ``save_model``)."""
        check_is_fitted(self)
        columns = [{"name": n, "kind": k, "fill": f, "categories": c}
                   for n, k, f, c in zip(self.feature_names_in_, self.kinds_, self.fill_, self.categories_,
                                         strict=True)]
        return {"columns": columns}, {"table.center": np.array(self.center_, dtype=np.float64),
                                      "table.scale": np.array(self.scale_, dtype=np.float64)}

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
        if not (np.isfinite(center).all() and np.isfinite(scale).all() and (scale > 0).all()):
            raise InputValueError("the saved preprocessing has a non-finite center or a scale that is not positive.")
        self = cls()
        self.feature_names_in_, self.kinds_, self.fill_, self.categories_ = [], [], [], []
        for i, col in enumerate(columns):
            if not isinstance(col, dict) or not isinstance(col.get("name"), str) \
                    or col.get("kind") not in (NUMERIC, CATEGORY) or not isinstance(col.get("categories"), list):
                raise InputValueError(f"saved preprocessing column {i} is malformed: {col!r:.80}")
            cats = col["categories"]
            fill_ok = isinstance(col.get("fill"), (int, float)) if col["kind"] == NUMERIC else \
                isinstance(col.get("fill"), str) and bool(cats) and all(isinstance(c, str) for c in cats)
            if not fill_ok or (col["kind"] == NUMERIC and cats):
                raise InputValueError(f"saved preprocessing column {col['name']!r} has an inconsistent fill value or "
                                      f"category list.")
            self.feature_names_in_.append(col["name"])
            self.kinds_.append(col["kind"])
            self.fill_.append(col["fill"])
            self.categories_.append(cats)
        if len(set(self.feature_names_in_)) != len(columns):
            raise InputValueError("the saved preprocessing names a column twice.")
        self.feature_names_in_ = np.array(self.feature_names_in_, dtype=object)
        self.n_features_in_ = len(columns)
        self.center_, self.scale_ = center.tolist(), scale.tolist()
        return self

    @property
    def n_features_out_(self) -> int:
        return sum(1 if k == NUMERIC else len(c) for k, c in zip(self.kinds_, self.categories_, strict=True))

