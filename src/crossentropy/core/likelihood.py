"""Negative log-likelihood losses with PyTorch's argument meanings: Poisson and Gaussian.

Each returns the loss, or ``(loss, grad)`` with ``return_grad=True``, ``grad`` being the gradient of the summed
returned loss with respect to ``input``. Reductions are element-wise ("mean" is the plain mean).
"""

from __future__ import annotations

import numpy as np

from ..rules.elementwise import gaussian_shapes
from ..rules.limits import masked_product
from ..rules.options import RATE, check_nonnegative, check_nonnegative_values, check_reduction
from ..rules.xp import NUMPY
from ._inputs import compute_dtype, float_array, same_shape
from ._outputs import elementwise
from .stable import xlogy


def poisson_nll(input, target, *, log_input: bool = True, full: bool = False, eps: float = 1e-8,
                reduction: str = "mean", return_grad: bool = False):
    """Poisson negative log-likelihood of counts ``target`` under rate ``input`` (PyTorch's ``poisson_nll_loss``)::

        log_input=True:   l = exp(x) - t * x                 d l / d x = exp(x) - t
        log_input=False:  l = x - t * log(x + eps)           d l / d x = 1 - t / (x + eps)
        full=True adds Stirling's term  t log t - t + log(2 pi t) / 2  where t > 1.

    >>> round(float(poisson_nll([0.0, 1.0], [1.0, 2.0])), 6)  # ((1 - 0) + (e - 2)) / 2
    0.859141
    """
    x = float_array(input, "input")
    t = float_array(target, "target")
    same_shape(x, t, "input", "target")
    reduction = check_reduction(reduction)
    eps = check_nonnegative(eps, "eps")
    check_nonnegative_values(NUMPY, t, "target", "hold non-negative counts")
    cdt = compute_dtype(x.dtype)
    xc, t = x.astype(cdt, copy=False), t.astype(cdt, copy=False)
    # Overflow rounds to +-inf; an indeterminate form of infinite inputs (an infinite count and rate) is NaN.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # t / 0 at a zero rate is -inf
        if log_input:
            rate = np.exp(xc)
            # A zero count drops t x even at x = -inf; x is clamped where exp(x) is already infinite, so an
            # infinite or huge rate gives +inf, never inf - inf (torch does the same).
            top = np.log(np.finfo(cdt).max).astype(cdt)
            loss = rate - NUMPY.mul_where(t, np.minimum(xc, top), t != 0)
            grad = rate - t
        else:
            check_nonnegative_values(NUMPY, xc, "input", RATE)
            # 0 log 0 = 0: a zero count at a zero rate (eps=0) costs nothing, and its gradient is 1.
            loss = xc - xlogy(t, np.minimum(xc + eps, np.finfo(cdt).max))
            grad = 1 - masked_product(NUMPY, t, NUMPY.reciprocal(xc + eps))
    if full:
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            stirling = t * np.log(t) - t + 0.5 * np.log(2 * np.pi * t)
        with np.errstate(invalid="ignore"):  # -inf + inf when t x and t log t both overflow: NaN, as in torch
            loss = loss + np.where(t > 1, stirling, 0.0)
    return elementwise(loss, grad if return_grad else None, None, reduction, x.dtype)


def _variance_like(var, x: np.ndarray, t: np.ndarray) -> np.ndarray:
    v = float_array(var, "var")
    v = v.reshape(gaussian_shapes(x.shape, t.shape, v.shape))
    check_nonnegative_values(NUMPY, v, "var")
    return v


def gaussian_nll(input, target, var, *, full: bool = False, eps: float = 1e-6, reduction: str = "mean",
                 return_grad: bool = False):
    """Gaussian negative log-likelihood of ``target`` under ``N(input, var)`` (PyTorch's ``gaussian_nll_loss``)::

        l = (log(v) + (x - t)**2 / v) / 2  (+ log(2 pi) / 2 if full)     v = max(var, eps)
        d l / d x = (x - t) / v

    Shapes as PyTorch's: ``target`` broadcasts to the input's shape; ``var`` has the input's shape, that shape with
    its last dimension dropped (one variance per row), or with one dimension 1, or is a scalar
    (``rules.elementwise.gaussian_shapes``).

    >>> round(float(gaussian_nll([1.0], [0.0], [1.0])), 6)
    0.5
    """
    x = float_array(input, "input")
    t = float_array(target, "target")
    reduction = check_reduction(reduction)
    eps = check_nonnegative(eps, "eps")
    cdt = compute_dtype(x.dtype)
    v = np.maximum(_variance_like(var, x, t).astype(cdt, copy=False), eps)
    # Overflow rounds to +-inf; an indeterminate form of infinite inputs (inf / inf) is NaN.
    with np.errstate(over="ignore", invalid="ignore"):
        diff = x.astype(cdt, copy=False) - t.astype(cdt, copy=False)
        loss = 0.5 * (np.log(v) + diff**2 / v)
        grad = diff / v
    if full:
        loss = loss + 0.5 * np.log(2 * np.pi)
    return elementwise(loss, grad if return_grad else None, None, reduction, x.dtype)
