"""Information measures of discrete distributions along ``axis``, and closed forms for Gaussians.

All are in nats unless ``base`` is given (``base=2`` gives bits). ``0 log 0 = 0``; a support mismatch
(``p > 0`` where ``q = 0``) gives ``+inf``. Inputs must be distributions: non-negative and summing to 1 within
``sqrt(eps)`` of their dtype, else ValueError, unless ``normalize=True`` rescales them (as SciPy always does).

The identity ``cross_entropy(p, q) == entropy(p) + kl_divergence(p, q)`` holds.
"""

from __future__ import annotations

import numpy as np

from ..rules.errors import InputValueError
from ..rules.limits import masked_product
from ..rules.options import check_positive
from ..rules.xp import NUMPY
from ._inputs import check_axis, check_distribution
from .stable import compute_array, xlogy


def _distribution(p, name: str, axis: int, normalize: bool) -> tuple[np.ndarray, int]:
    a = compute_array(p, name)
    if a.ndim == 0:
        raise InputValueError(f"{name} must be a distribution with at least one dimension, but got a scalar.")
    ax = check_axis(axis, a.ndim)
    return check_distribution(a, name, ax, normalize=normalize), ax


def _pair(p, q, axis: int, normalize: bool) -> tuple[np.ndarray, np.ndarray, int]:
    """``p`` and ``q`` broadcast against each other (NumPy's rules, as SciPy's ``stats.entropy``), then checked
    as distributions along ``axis`` of the common shape."""
    a, b = compute_array(p, "p"), compute_array(q, "q")
    try:
        shape = np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise InputValueError(f"`p` and `q` must have the same shape, or shapes that broadcast (NumPy's rules), but "
                              f"got {a.shape} and {b.shape}.") from None
    a, ax = _distribution(np.broadcast_to(a, shape), "p", axis, normalize)
    b, _ = _distribution(np.broadcast_to(b, shape), "q", axis, normalize)
    return a, b, ax


def _in_base(value: np.ndarray, base) -> np.ndarray:
    if base is None:
        return value
    b = check_positive(base, "base", example="2")
    if b == 1:
        raise InputValueError("base must be a positive number other than 1 (2 gives bits), but got 1.")
    return value / np.log(b)


def _result(value: np.ndarray, base):
    out = _in_base(value, base)
    return out[()] if out.ndim == 0 else out


def entropy(p, *, axis: int = -1, base=None, normalize: bool = False):
    """Shannon entropy ``H(p) = -sum_i p_i log p_i``.

    >>> float(entropy([0.5, 0.5], base=2))
    1.0
    >>> float(entropy([1.0, 0.0]))  # 0 log 0 = 0
    0.0
    """
    a, ax = _distribution(p, "p", axis, normalize)
    return _result(0.0 - np.sum(xlogy(a, a), axis=ax), base)  # 0.0 - x: no -0.0


def cross_entropy(p, q, *, axis: int = -1, base=None, normalize: bool = False):
    """Cross-entropy ``H(p, q) = -sum_i p_i log q_i``: the expected code length of ``p`` under a code built for ``q``.

    >>> round(float(cross_entropy([1, 0, 0, 0], [0.775, 0.116, 0.039, 0.070], base=2)), 4)
    0.3677
    >>> float(cross_entropy([0.5, 0.5], [1.0, 0.0]))  # support mismatch
    inf
    """
    a, b, ax = _pair(p, q, axis, normalize)
    return _result(0.0 - np.sum(xlogy(a, b), axis=ax), base)


def _kl(a: np.ndarray, b: np.ndarray, ax: int) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = masked_product(NUMPY, a, np.log(a) - np.log(b))
    # Mathematically >= 0 (Gibbs); rounding can leave -1 ulp, which is clipped.
    return np.maximum(np.sum(terms, axis=ax), 0.0)


def kl_divergence(p, q, *, axis: int = -1, base=None, normalize: bool = False):
    """Kullback-Leibler divergence ``KL(p || q) = sum_i p_i log(p_i / q_i) = H(p, q) - H(p)``, >= 0.

    Not SciPy's ``special.kl_div``, whose elements add ``q_i - p_i`` (equal sums only for normalized inputs).

    >>> round(float(kl_divergence([0.5, 0.5], [0.9, 0.1])), 6)
    0.510826
    """
    a, b, ax = _pair(p, q, axis, normalize)
    return _result(_kl(a, b, ax), base)


def js_divergence(p, q, *, axis: int = -1, base=None, normalize: bool = False):
    """Jensen-Shannon divergence ``JS(p, q) = KL(p || m) / 2 + KL(q || m) / 2`` with ``m = (p + q) / 2``.

    Symmetric, finite, and at most ``log 2`` (1 bit). SciPy's ``spatial.distance.jensenshannon`` returns its
    square root, a distance.

    >>> float(js_divergence([1.0, 0.0], [0.0, 1.0], base=2))
    1.0
    """
    a, b, ax = _pair(p, q, axis, normalize)
    m = (a + b) / 2
    return _result(np.minimum((_kl(a, m, ax) + _kl(b, m, ax)) / 2, np.log(2.0)), base)


def perplexity(p, q=None, *, axis: int = -1, normalize: bool = False):
    """``exp(H(p))``, or ``exp(H(p, q))`` when ``q`` is given: the effective number of equally likely outcomes.

    It does not depend on the log base, so it takes none.

    >>> float(perplexity([0.25, 0.25, 0.25, 0.25]))
    4.0
    """
    h = entropy(p, axis=axis, normalize=normalize) if q is None else cross_entropy(
        p, q, axis=axis, normalize=normalize)
    return np.exp(h)


def _variance(v, name: str) -> np.ndarray:
    a = compute_array(v, name)
    if (a <= 0).any() or np.isinf(a).any():
        raise InputValueError(f"{name} must be a positive, finite variance, but its smallest value is {np.min(a)}. "
                         f"Pass a variance (sigma**2), not a log-variance.")
    return a


def gaussian_entropy(var, *, base=None):
    """Differential entropy of ``N(mu, var)``: ``log(2 pi e var) / 2``.

    >>> round(float(gaussian_entropy(1.0)), 6)
    1.418939
    """
    v = _variance(var, "var")
    return _result(0.5 * (np.log(2 * np.pi * np.e) + np.log(v)), base)  # log(2 pi e v) overflows for v near max


def gaussian_cross_entropy(mu_p, var_p, mu_q, var_q, *, base=None):
    """``H(N(mu_p, var_p), N(mu_q, var_q)) = log(2 pi var_q) / 2 + (var_p + (mu_p - mu_q)**2) / (2 var_q)``.

    >>> round(float(gaussian_cross_entropy(0.0, 1.0, 0.0, 1.0)), 6)  # equals the entropy
    1.418939
    """
    vp, vq = _variance(var_p, "var_p"), _variance(var_q, "var_q")
    mp, mq = compute_array(mu_p, "mu_p"), compute_array(mu_q, "mu_q")
    # A square or quotient beyond the float range is +inf, as is the result; infinite means of one sign are NaN.
    with np.errstate(over="ignore", invalid="ignore"):
        return _result(0.5 * (np.log(2 * np.pi) + np.log(vq)) + (vp + (mp - mq) ** 2) / (2 * vq), base)


def gaussian_kl(mu_p, var_p, mu_q, var_q, *, base=None):
    """``KL(N(mu_p, var_p) || N(mu_q, var_q)) = (log(var_q / var_p) + (var_p + (mu_p - mu_q)**2) / var_q - 1) / 2``.

    >>> round(float(gaussian_kl(0.0, 1.0, 1.0, 1.0)), 6)
    0.5
    """
    vp, vq = _variance(var_p, "var_p"), _variance(var_q, "var_q")
    mp, mq = compute_array(mu_p, "mu_p"), compute_array(mu_q, "mu_q")
    # log(var_q) - log(var_p), not log(var_q / var_p): the ratio overflows for var_p = 1e-300, var_q = 1e300.
    # A quotient beyond the float range is +inf, and so is the divergence; infinite means of one sign are NaN.
    with np.errstate(over="ignore", invalid="ignore"):
        return _result(0.5 * (np.log(vq) - np.log(vp) + (vp + (mp - mq) ** 2) / vq - 1.0), base)
