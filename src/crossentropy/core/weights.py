"""Class weights for imbalanced data, and label helpers (one-hot, smoothing)."""

from __future__ import annotations

import warnings

import numpy as np

from ..rules.errors import InputTypeError, InputValueError
from ..rules.options import check_label_smoothing, check_nonnegative
from ..rules.targets import smooth

METHODS = ("balanced", "effective_number")


def _labels(labels, n_classes) -> tuple[np.ndarray, int]:
    y = np.asarray(labels)
    if y.size == 0:
        # Weights come from label counts; with no labels every count is 0, and no weighting follows from it.
        raise InputValueError("labels is empty, so there are no counts to weigh classes by. Pass at least one label.")
    if y.dtype.kind not in "iu":
        raise InputTypeError(f"labels must be integer class indices, but got dtype {y.dtype}. Encode string or "
                        f"float labels first, e.g. with np.unique(labels, return_inverse=True).")
    y = y.reshape(-1)
    if y.min() < 0:
        raise InputValueError(f"labels must be non-negative class indices, but the smallest is {y.min()}.")
    top = int(y.max()) + 1
    if n_classes is None:
        n_classes = top
    elif isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) or n_classes < 1:
        raise InputValueError(f"n_classes must be a positive int or None, but got {n_classes!r}.")
    elif top > n_classes:
        raise InputValueError(f"labels contain class {top - 1}, but n_classes={n_classes}. Raise n_classes.")
    return y, int(n_classes)


def class_weights(labels, *, n_classes: int | None = None, method: str = "balanced", beta: float = 0.999):
    """Per-class weights from label counts ``n_c``, for ``class_weight=``.

    * ``"balanced"``: ``N / (K * n_c)``, scikit-learn's ``compute_class_weight("balanced")``.
    * ``"effective_number"``: ``(1 - beta) / (1 - beta**n_c)``, the inverse effective number of samples
      (Cui et al., 2019), scaled so the weights sum to K.

    A class with no samples gets weight 0 and a warning (it never appears in the loss of this data).

    >>> class_weights(np.array([0, 0, 0, 1]))
    array([0.66666667, 2.        ])
    """
    y, k = _labels(labels, n_classes)
    if method not in METHODS:
        raise InputValueError(f"method must be 'balanced' or 'effective_number', but got {method!r}.")
    counts = np.bincount(y, minlength=k).astype(np.float64)
    present = counts > 0
    if not present.all():
        warnings.warn(f"classes {np.flatnonzero(~present).tolist()} have no samples; their weight is set to 0.",
                      UserWarning, stacklevel=2)
    w = np.zeros(k)
    if method == "balanced":
        w[present] = y.size / (present.sum() * counts[present])
    else:
        beta = check_nonnegative(beta, "beta")
        if not 0 <= beta < 1:
            raise InputValueError(f"beta must be in [0, 1), but got {beta}. Typical values are 0.9 to 0.9999.")
        w[present] = (1 - beta) / -np.expm1(counts[present] * np.log(beta)) if beta > 0 else 1.0
        w *= present.sum() / w.sum()
    return w


def one_hot(index, n_classes: int, *, dtype=np.float64) -> np.ndarray:
    """``(..., K)`` one-hot rows for integer ``index`` of shape ``(...)``.

    >>> one_hot(np.array([1, 0]), 3)
    array([[0., 1., 0.],
           [1., 0., 0.]])
    """
    i = np.asarray(index)
    if i.dtype.kind not in "iu":
        raise InputTypeError(f"index must hold integers, but got dtype {i.dtype}.")
    if i.size and (i.min() < 0 or i.max() >= n_classes):
        raise InputValueError(f"index values must lie in [0, {n_classes - 1}], but range from {i.min()} to {i.max()}.")
    return np.eye(n_classes, dtype=dtype)[i]


def smooth_labels(target, label_smoothing: float, *, axis: int = -1) -> np.ndarray:
    """``(1 - e) * target + e / K`` along ``axis``: the smoothed targets every loss here uses.

    >>> smooth_labels(np.array([1.0, 0.0]), 0.1)
    array([0.95, 0.05])
    """
    e = check_label_smoothing(label_smoothing)
    t = np.asarray(target, dtype=np.float64)
    return smooth(t, e, t.shape[axis])
