"""Numerically stable primitives: logsumexp, softmax, log_softmax, sigmoid, log_sigmoid, softplus, xlogy.

Conventions (docs/semantics.md):

* float16 is computed in float32 and returned as float32; integers are computed in float64.
* Each is exact in the sense of one rounding per step for |x| up to 1e4 (float32) and 1e300 (float64).
* Infinite logits have a defined result: softmax is the limit of finite logits moving to +-inf at the same rate.
  The +inf entries of a row share its mass equally; a row that is all -inf is uniform. NaN propagates.
"""

from __future__ import annotations

import numpy as np

from ..rules import limits
from ..rules.xp import NUMPY
from ._inputs import check_axis, compute_dtype, float_array


def compute_array(x, name: str = "x") -> np.ndarray:
    """``x`` as a float array in its compute dtype (float16 is computed in float32: compute_dtype)."""
    a = float_array(x, name)
    return a.astype(compute_dtype(a.dtype), copy=False)


def _along(rule, x: np.ndarray, axis: int) -> np.ndarray:
    """A rule of ``rules.limits`` (which works along the last axis) applied along ``axis``."""
    return np.moveaxis(rule(NUMPY, np.moveaxis(x, axis, -1)), -1, axis)


def logsumexp(x, axis: int = -1, *, keepdims: bool = False) -> np.ndarray:
    """``log(sum(exp(x)))`` along ``axis``, computed as ``m + log(sum(exp(x - m)))`` with ``m = max(x)``.

    >>> float(logsumexp([1000.0, 1000.0]))  # 1000 + log 2, no overflow
    1000.6931471805599
    >>> float(logsumexp([-np.inf, 0.0]))
    0.0
    """
    a = compute_array(x)
    axis = check_axis(axis, a.ndim)
    out = _along(limits.logsumexp, a, axis)
    return out if keepdims else np.squeeze(out, axis=axis)


def log_softmax(x, axis: int = -1) -> np.ndarray:
    """``x - logsumexp(x)`` along ``axis``, never ``log(softmax(x))``.

    >>> np.round(log_softmax([0.0, np.log(3.0)]), 6)  # log(1/4), log(3/4)
    array([-1.386294, -0.287682])
    """
    a = compute_array(x)
    return _along(limits.log_softmax, a, check_axis(axis, a.ndim))


def softmax(x, axis: int = -1) -> np.ndarray:
    """``exp(x - logsumexp(x))``: a distribution along ``axis``.

    >>> softmax([0.0, np.log(3.0)])
    array([0.25, 0.75])
    >>> softmax([np.inf, 1.0, np.inf])  # the +inf entries share the mass
    array([0.5, 0. , 0.5])
    """
    a = compute_array(x)
    axis = check_axis(axis, a.ndim)
    e = np.exp(_along(lambda xp, z: limits.shift_by_max(xp, z)[0], a, axis))
    return e / np.sum(e, axis=axis, keepdims=True)


def sigmoid(x) -> np.ndarray:
    """``1 / (1 + exp(-x))``, evaluated through ``exp(-|x|)`` so it never overflows.

    >>> sigmoid([-np.inf, 0.0, 800.0])
    array([0. , 0.5, 1. ])
    """
    return NUMPY.sigmoid(compute_array(x))


def softplus(x) -> np.ndarray:
    """``log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|))``. Its derivative is ``sigmoid(x)``.

    >>> [round(float(v), 6) for v in softplus([-1000.0, 0.0, 1000.0])]
    [0.0, 0.693147, 1000.0]
    """
    return NUMPY.softplus(compute_array(x))


def log_sigmoid(x) -> np.ndarray:
    """``log(sigmoid(x)) = -softplus(-x)``. Its derivative is ``sigmoid(-x)``.

    >>> [round(float(v), 6) for v in log_sigmoid([-1000.0, 0.0])]
    [-1000.0, -0.693147]
    """
    a = compute_array(x)
    return np.minimum(a, 0) - np.log1p(np.exp(-np.abs(a)))


def xlogy(x, y) -> np.ndarray:
    """``x * log(y)``, with ``0 * log(y) = 0`` for any ``y`` that is not NaN (so ``0 log 0 = 0``), as SciPy's.

    >>> xlogy([0.0, 2.0], [0.0, np.e])
    array([0., 2.])
    """
    a, b = np.broadcast_arrays(compute_array(x, "x"), compute_array(y, "y"))
    dtype = np.result_type(a, b)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        out = a * np.log(b)
    out = np.where((a == 0) & ~np.isnan(b), 0.0, out)
    return out.astype(dtype, copy=False)
