"""The weight of a whole batch split into micro-batches: the exact "mean" under gradient accumulation."""

from __future__ import annotations

import numpy as np

from ..constants import IGNORE_INDEX
from ..rules.errors import InputTypeError, InputValueError
from ..rules.options import SoftmaxOptions, check_unit_interval
from ..rules.reduction import batch_weight
from ..rules.xp import NUMPY
from ._inputs import check_weights, float_array


def _target_rows(t, i: int, n_classes: int | None):
    """One micro-batch's targets as rows: ``(n,)`` int64 indices or ``(n, K)`` probabilities (class axis last)."""
    name = f"targets[{i}]"
    a = np.asarray(t)
    if a.dtype.kind in "iu":
        return a.reshape(-1).astype(np.int64, copy=False)
    if a.dtype.kind == "f":
        if a.ndim == 0:
            raise InputValueError(f"{name} holds probabilities, so it needs a class axis (the last one), but got a "
                                  f"scalar. Pass class indices as integers.")
        check_unit_interval(NUMPY, a, name, "Soft targets are probabilities; pass class indices as integers.")
        if n_classes is not None and a.shape[-1] != n_classes:
            raise InputValueError(f"{name} has {a.shape[-1]} classes on its last axis, but class_weight has "
                                  f"{n_classes}. The class axis of probability targets is the last one.")
        return a.reshape(-1, a.shape[-1])
    raise InputTypeError(f"{name} must be integer class indices or float probabilities, but got dtype {a.dtype}.")


def total_weight(targets, *, class_weight=None, ignore_index: int = IGNORE_INDEX,
                 label_smoothing: float = 0.0) -> float:
    """``W = sum_i o_i`` over every target of ``targets``: the denominator of ``reduction="mean"`` for the whole
    batch, with ``o_i = sum_c w_c t'_ic`` (0 for an ignored index target) as in ``softmax_cross_entropy``.

    ``targets`` is one target array, or a list / tuple of NumPy arrays (the micro-batches), of class indices or
    probabilities (class axis last). Passing ``total_weight=W`` to each micro-batch's loss makes it
    ``sum_i l_i / W`` over that micro-batch, so the micro-batch gradients sum to exactly the gradient of the whole
    batch's "mean", class weights, smoothing and ignored targets included. Sample weights are not covered.

    >>> total_weight([np.array([0, 2, -100]), np.array([1])], class_weight=[1.0, 2.0, 0.5])
    3.5
    """
    if isinstance(targets, (list, tuple)) and not targets:
        raise InputValueError("targets is empty; pass a target array or a non-empty list of them.")
    many = isinstance(targets, (list, tuple)) and all(isinstance(t, np.ndarray) for t in targets)
    batches = list(targets) if many else [targets]
    options = SoftmaxOptions.of(ignore_index=ignore_index, label_smoothing=label_smoothing)
    w = None
    if class_weight is not None:
        w = float_array(class_weight, "class_weight")
        if w.ndim != 1:
            raise InputValueError(f"class_weight must be one weight per class (1-D), but got shape {w.shape}.")
        w = check_weights(w, "class_weight", w.shape)
    n_classes = None if w is None else w.shape[0]
    rows = [_target_rows(t, i, n_classes) for i, t in enumerate(batches)]
    return float(batch_weight(NUMPY, rows, options, w=w))
