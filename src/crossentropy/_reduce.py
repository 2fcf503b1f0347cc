"""The one definition of "none" / "sum" / "mean".

Given per-sample losses ``l`` and per-sample weights ``o`` (DESIGN.md, semantics 4 and 5):

* ``"none"`` is ``l``;
* ``"sum"`` is ``sum(l)``;
* ``"mean"`` is ``sum(l) / sum(o)``, the weighted average, and 0 (with a zero gradient) when ``sum(o) == 0``.

Sums accumulate in float64. ``grad_scale`` is the factor by which the gradient of ``sum(l)`` becomes the gradient
of the reduced loss, so losses can fold it into their closed-form gradient.
"""

from __future__ import annotations

import numpy as np

from ._validate import compute_dtype


def grad_scale(o_total: float, reduction: str) -> float:
    """d(reduced)/d(sum l): 1 for "none" and "sum", 1/sum(o) for "mean" (0 when nothing is weighted)."""
    if reduction != "mean":
        return 1.0
    return 0.0 if o_total == 0 else 1.0 / o_total


def reduce(l: np.ndarray, o_total: float, reduction: str, dtype: np.dtype):
    """Reduce per-sample losses ``l`` (float64 or the compute dtype) and return them in ``dtype``."""
    if reduction == "none":
        return np.asarray(l, dtype=dtype)
    total = np.sum(l, dtype=np.float64)
    if reduction == "mean":
        total = total * grad_scale(o_total, reduction) if o_total != 0 else np.float64(0.0)
    return dtype.type(total)


def total_weight(o) -> float:
    return float(np.sum(o, dtype=np.float64))


def elementwise(loss: np.ndarray, grad: np.ndarray | None, o: np.ndarray | None, reduction: str,
                input_dtype: np.dtype):
    """Reduce an element-wise loss with element weights ``o`` (semantics 5): "mean" is ``sum(o l) / sum(o)``,
    the plain mean when ``o`` is None. Returns the loss, or ``(loss, grad)`` when ``grad`` is given."""
    if o is None:
        o_total = float(loss.size)
    else:
        o = np.broadcast_to(o, loss.shape)
        with np.errstate(invalid="ignore"):
            loss = np.where(o == 0, 0.0, o * loss)
        grad = None if grad is None else o * grad
        o_total = total_weight(o)
    value = reduce(loss, o_total, reduction, compute_dtype(np.dtype(input_dtype)))
    if grad is None:
        return value
    return value, (grad * grad_scale(o_total, reduction)).astype(input_dtype, copy=False)
