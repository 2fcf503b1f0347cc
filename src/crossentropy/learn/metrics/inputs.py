"""The checked inputs of every metric: labels and predicted probabilities, and the class of each column."""

from __future__ import annotations

import numpy as np

from ...core._inputs import sum_tolerance, warn_if_not_normalized
from ...rules.errors import InputValueError

# A row of proba whose sum is further than this from 1 is refused; a nearer one only warns (docs/semantics.md).
FAR_FROM_ONE = 0.1


def check_inputs(y_true, proba, labels):
    """``(y, p, labels, y_index)`` from the labels ``y_true`` and the probabilities ``proba`` (binary (n,) becomes two
    columns), checked: one row per label, finite probabilities whose rows sum to 1, and ``labels`` naming each
    column's class once (inferred from ``y_true`` when None). ``y_index`` is each label's column."""
    y = np.asarray(y_true)
    p = np.asarray(proba, dtype=np.float64)
    if y.ndim != 1:
        raise InputValueError(f"`y_true` must be a 1-D array of labels, but got shape {y.shape}.")
    if y.dtype.kind == "f" and y.size and not (np.isfinite(y) & (y == np.round(y))).all():
        bad = y[~(np.isfinite(y) & (y == np.round(y)))][0]
        raise InputValueError(f"`y_true` must hold class labels (integers or text), but it holds the number "
                              f"{float(bad):g}, which is not a whole number; pass the labels, not scores.")
    if p.ndim not in (1, 2):
        raise InputValueError(f"`proba` must have shape (n_samples, n_classes), or (n_samples,) for binary, but got "
                              f"shape {p.shape}.")
    if p.shape[0] != y.shape[0]:
        raise InputValueError(f"`y_true` and `proba` must have the same number of samples, but got {y.shape[0]} "
                              f"labels and {p.shape[0]} rows of probabilities.")
    if y.shape[0] == 0:
        raise InputValueError("`y_true` is empty; evaluate needs at least one sample.")
    if np.isnan(p).any():
        raise InputValueError("`proba` contains NaN; check the model's outputs.")
    if p.min() < 0 or p.max() > 1:  # the values as given (before a binary column becomes two)
        raise InputValueError(f"`proba` must hold probabilities in [0, 1], but its values range from {p.min():.6g} "
                              f"to {p.max():.6g}. If these are logits, apply softmax first, or pass them as "
                              f"`logits` where that is taken.")
    if p.ndim == 1:  # binary: the probability of the positive (second) class
        p = np.column_stack([1 - p, p])
    sums = p.sum(axis=1)
    far = np.abs(sums - 1) > FAR_FROM_ONE
    if far.any():
        i = int(np.flatnonzero(far)[0])
        raise InputValueError(f"each row of `proba` must be a distribution summing to 1, but row {i} sums to "
                              f"{sums[i]:.6g}, more than {FAR_FROM_ONE:g} away (per-class scores, or part of the "
                              f"classes?). Normalize the rows (p / p.sum(axis=1, keepdims=True)) or apply softmax.")
    warn_if_not_normalized(p, "proba", 1, tol=sum_tolerance(np.float32))  # predictions are often saved as float32
    if labels is None:
        present = np.unique(y)
        if present.dtype.kind in "iu":  # integer labels are column indices
            outside = present[(present < 0) | (present >= p.shape[1])]
            if outside.size:
                raise InputValueError(f"`y_true` has integer labels {outside[:5].tolist()} outside "
                                      f"0..{p.shape[1] - 1}, so they name no column of `proba`; pass labels= (the "
                                      f"class of each column, in order), or give a file's columns a header naming "
                                      f"their classes.")
            labels = np.arange(p.shape[1])
        elif present.size == p.shape[1]:
            labels = present
        else:
            raise InputValueError(f"`y_true` has {present.size} distinct labels but `proba` has {p.shape[1]} "
                                  f"columns; pass labels= (the class of each column, in order), or give a file's "
                                  f"columns a header naming their classes.")
    labels = np.asarray(labels)
    if labels.shape != (p.shape[1],):
        raise InputValueError(f"labels must name one class per column of `proba` ({p.shape[1]}), but got "
                              f"{labels.size}.")
    if np.unique(labels).size != labels.size:
        values, counts = np.unique(labels, return_counts=True)
        raise InputValueError(f"labels must name each class once, but {values[counts > 1].tolist()} appear more than "
                              f"once.")
    unknown = np.setdiff1d(y, labels)
    if unknown.size:
        raise InputValueError(f"`y_true` has labels {unknown[:5].tolist()} that are not in labels {labels.tolist()} "
                              f"(the classes of `proba`'s columns).")
    index = {label: i for i, label in enumerate(labels.tolist())}
    return y, p, labels, np.array([index[v] for v in y.tolist()], dtype=np.int64)
