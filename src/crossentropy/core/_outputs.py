"""NumPy results: the rules layer's reductions applied, and values returned in the documented dtypes
(docs/semantics.md, 2: the loss in the input's float dtype, float32 for float16; the gradient in the input's)."""

from __future__ import annotations

import numpy as np

from ..rules.reduction import reduce, reduce_elementwise
from ..rules.xp import NUMPY
from ._inputs import compute_dtype


def reduced(l: np.ndarray, reduction: str, scale, dtype: np.dtype):
    """Per-row losses ``l`` reduced by the rules, in ``dtype``."""
    value = reduce(NUMPY, l, reduction, scale)
    with np.errstate(over="ignore"):  # a float64 total beyond float32's range is +-inf in float32
        return np.asarray(value, dtype=dtype) if reduction == "none" else dtype.type(value)


def elementwise(loss: np.ndarray, grad: np.ndarray | None, o: np.ndarray | None, reduction: str,
                input_dtype: np.dtype):
    """An element-wise loss with element weights ``o`` reduced by the rules (semantics 5). Returns the loss, or
    ``(loss, grad)`` when ``grad`` is given, ``grad`` then being that of the reduced loss."""
    if o is not None:
        o = np.broadcast_to(o, loss.shape)
    value, scale = reduce_elementwise(NUMPY, loss, o, reduction)
    value = reduced(value, "none" if reduction == "none" else "sum", None, compute_dtype(np.dtype(input_dtype)))
    if grad is None:
        return value
    if o is not None:
        grad = NUMPY.mul_where(o, grad, o != 0)
    if scale is not None:
        grad = grad * scale
    with np.errstate(over="ignore"):  # a gradient beyond float16's range rounds to +-inf, as any cast does
        return value, np.asarray(grad).astype(input_dtype, copy=False)
