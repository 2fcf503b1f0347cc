"""NumPy results: the rules layer's reductions applied, and values returned in the documented dtypes
(docs/semantics.md, 2: the loss in the input's float dtype, float32 for float16; the gradient in the input's), and
the ``out=`` array that receives a gradient checked."""

from __future__ import annotations

import numpy as np

from ..rules.errors import InputTypeError, InputValueError
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


def check_out(out, x: np.ndarray, return_grad: bool, *, whose: str = "input", name: str = "input") -> None:
    """``out=`` receives the gradient with respect to ``x`` (argument ``name``): it needs ``return_grad``, and must
    be a writeable array of ``x``'s shape and dtype that is ``x`` itself or does not overlap it."""
    if out is None:
        return
    if not return_grad:
        raise InputValueError("out= receives the gradient, so it needs return_grad=True. Pass return_grad=True, or "
                              "drop out=.")
    if not isinstance(out, np.ndarray):
        raise InputTypeError(f"out must be a NumPy array, but got {type(out).__name__}.")
    if out.shape != x.shape or out.dtype != x.dtype:
        raise InputValueError(f"out must have the {whose}'s shape {x.shape} and dtype {x.dtype}, but got shape "
                              f"{out.shape} and dtype {out.dtype}. Allocate it with np.empty_like({name}).")
    if not out.flags.writeable:
        raise InputValueError("out is read-only; pass a writeable array.")
    if np.shares_memory(out, x) and not (out.__array_interface__["data"] == x.__array_interface__["data"]
                                         and out.strides == x.strides):
        raise InputValueError(f"out overlaps the {whose} without being it, so writing the gradient would corrupt "
                              f"values not yet read. Pass out={name} (in place) or a separate array.")
