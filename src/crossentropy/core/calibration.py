"""Temperature scaling (Guo et al., 2017): the one scalar ``T > 0`` that makes ``softmax(logits / T)`` best
calibrated in cross-entropy on held-out data.

With ``b = 1 / T`` the objective is the weighted mean cross-entropy

    L(b) = sum_i w_i (logsumexp_c(b z_ic) - b z_iy_i) / sum_i w_i,

    L'(b) = sum_i w_i (E_p[z_i] - z_iy_i) / sum_i w_i,      L''(b) = sum_i w_i Var_p[z_i] / sum_i w_i >= 0,

where ``p = softmax(b z_i)``. ``L`` is **convex in b = 1/T** (a log-sum-exp of functions linear in ``b``, minus a
linear term), so ``L'`` is non-decreasing and has one root. As a function of ``T`` or ``log T`` (monotone
reparametrisations of ``b``) it is unimodal but not convex in general. The root of ``L'`` is found by Newton's method
in ``b``, safeguarded by bisection on a bracket where ``L'`` changes sign, to full float64 precision.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..rules.errors import InputTypeError, InputValueError
from ._inputs import check_weights, class_targets, float_array

#: The returned temperature lies in ``[TEMPERATURE_RANGE[0] * s, TEMPERATURE_RANGE[1] * s]``, where ``s`` is the
#: largest spread ``max_c z_ic - min_c z_ic`` of a row of logits; an optimum outside is returned as the bound.
TEMPERATURE_RANGE = (1e-6, 1e6)


class _Objective:
    """``L(b)`` and its first two derivatives for rows of logits shifted so that each row's maximum is 0."""

    def __init__(self, z: np.ndarray, target: np.ndarray, weight: np.ndarray):
        self.finite = np.isfinite(z)
        self.z0 = np.where(self.finite, z, 0.0)  # -inf logits have p = 0 at every b >= 0, and 0 * z counts as 0
        self.zy = z[np.arange(len(target)), target]
        self.w = weight / weight.sum()

    def _exp(self, b: float) -> np.ndarray:
        # every exponent is <= 0, so nothing overflows; each row's maximum gives exp(0) = 1
        return np.where(self.finite, np.exp(b * self.z0), 0.0)

    def loss(self, b: float) -> float:
        return float(self.w @ (np.log(self._exp(b).sum(axis=1)) - b * self.zy))

    def derivatives(self, b: float) -> tuple[float, float]:
        e = self._exp(b)
        p = e / e.sum(axis=1, keepdims=True)
        m1 = (p * self.z0).sum(axis=1)
        m2 = (p * self.z0 * self.z0).sum(axis=1)
        return float(self.w @ (m1 - self.zy)), float(self.w @ np.maximum(m2 - m1 * m1, 0.0))


def _check(logits, target, sample_weight):
    z = float_array(logits, "logits").astype(np.float64, copy=False)
    if z.ndim == 1:  # binary: one logit per sample, sigmoid(z / T) = softmax([0, z] / T)[1]
        z = np.column_stack([np.zeros_like(z), z])
    if z.ndim != 2 or z.shape[1] < 2 or z.shape[0] == 0:
        raise InputValueError(f"logits must have shape (n_samples, n_classes) with n_samples >= 1 and n_classes >= 2, "
                              f"or (n_samples,) for binary, but got shape {np.shape(logits)}.")
    if np.isnan(z).any() or np.isposinf(z).any():
        raise InputValueError("logits must not contain NaN or +inf; a temperature cannot be fitted to them. Drop or "
                              "fix those rows.")
    if np.asarray(target).dtype.kind not in "iu":
        raise InputTypeError(f"target must hold integer class indices, but got dtype {np.asarray(target).dtype}. "
                             f"Convert labels to indices 0..K-1, e.g. with np.unique(y, return_inverse=True).")
    _, t = class_targets(target, z.shape, 1, ignore_index=-1)
    if (t < 0).any():
        raise InputValueError(f"target has class index -1 at position {int(np.argmax(t < 0))}; fit_temperature has "
                              f"no ignored index: drop those samples.")
    w = check_weights(sample_weight, "sample_weight", (z.shape[0],))
    w = np.ones(z.shape[0]) if w is None else w
    top = w.max()
    w = w / top if top > 0 else w  # only relative weights matter: the fit is the same for w * 1e307
    if not w.sum() > 0:
        raise InputValueError("sample_weight sums to 0; at least one sample needs a positive weight.")
    keep = w > 0
    z, t, w = z[keep], t[keep], w[keep]
    if np.isneginf(z).all(axis=1).any():
        raise InputValueError("logits has a row that is entirely -inf, which is no distribution.")
    if np.isneginf(z[np.arange(len(t)), t]).any():
        raise InputValueError("logits has -inf at a sample's target class: its cross-entropy is +inf at every "
                              "temperature. Drop those samples.")
    return z - z.max(axis=1, keepdims=True), t, w


def fit_temperature(logits, target, *, sample_weight=None) -> float:
    """The temperature ``T > 0`` that minimises the (``sample_weight``-weighted) mean cross-entropy of
    ``softmax(logits / T)`` against integer ``target``:

        T* = argmin_T  sum_i w_i [logsumexp(z_i / T) - z_iy_i / T] / sum_i w_i.

    The objective is convex in ``1 / T`` (module docstring), and ``T*`` is exact to float64 precision (Newton's
    method with a bisection safeguard on the closed-form derivative). Scaling the logits scales the temperature:
    ``fit_temperature(c * z, y) == c * fit_temperature(z, y)`` for ``c > 0``.

    Parameters
    ----------
    logits : array of shape (n_samples, n_classes), or (n_samples,) for one binary (sigmoid) logit per sample
        Finite, or ``-inf`` for a class of probability 0. For probabilities, pass ``np.log(proba)``.
    target : int array of shape (n_samples,)
        Class indices in ``[0, n_classes)`` (0 or 1 for binary logits).
    sample_weight : array of shape (n_samples,), optional
        Non-negative weights; samples of weight 0 are ignored.

    Edge cases, each with a ``UserWarning``: ``s`` below is the largest spread of a row of logits.

    * Every sample's target already has the largest logit (a perfectly separable set): the loss decreases towards
      0 as ``T -> 0``; the lower bound ``TEMPERATURE_RANGE[0] * s`` is returned.
    * The logits are no better than uniform (``L'(0) >= 0``, e.g. every prediction wrong): the optimum is
      ``T -> inf`` (uniform probabilities); the upper bound ``TEMPERATURE_RANGE[1] * s`` is returned.
    * Every row of logits is constant: every ``T`` gives the same loss; 1.0 is returned.

    >>> round(fit_temperature([[0.0, 1.0]] * 4, [1, 1, 1, 0]), 10)  # sigmoid(1 / T) = 3/4: T = 1 / log(3)
    0.9102392266
    """
    z, t, w = _check(logits, target, sample_weight)
    spread = float(-np.where(np.isfinite(z), z, 0.0).min())
    if spread == 0:
        warnings.warn("fit_temperature: every row of logits is constant, so every temperature gives the same loss; "
                      "returning 1.0.", UserWarning, stacklevel=2)
        return 1.0
    t_min, t_max = TEMPERATURE_RANGE[0] * spread, TEMPERATURE_RANGE[1] * spread
    objective = _Objective(z / spread, t, w)  # logits in units of the spread: no overflow in z**2 at 1e200
    if (objective.zy == 0).all():
        warnings.warn(f"fit_temperature: every sample's target has the largest logit (a perfectly separable set), so "
                      f"the loss keeps falling as T -> 0; returning the lower bound T = {t_min:.6g}.", UserWarning,
                      stacklevel=2)
        return t_min
    if objective.derivatives(0.0)[0] >= 0:
        warnings.warn(f"fit_temperature: the logits predict the targets no better than uniform probabilities, so the "
                      f"optimum is T -> inf; returning the upper bound T = {t_max:.6g}.", UserWarning, stacklevel=2)
        return t_max
    lo, hi, b_max = 0.0, 1.0, 1.0 / TEMPERATURE_RANGE[0]  # b = spread / T
    while objective.derivatives(hi)[0] < 0:  # L' rises to a positive limit when some target is not the argmax
        lo, hi = hi, 2.0 * hi
        if hi > b_max:
            warnings.warn(f"fit_temperature: the optimum lies below the lower bound; returning T = {t_min:.6g}.",
                          UserWarning, stacklevel=2)
            return t_min
    b = 0.5 * (lo + hi)
    for _ in range(200):
        g, h = objective.derivatives(b)
        if g == 0:
            break
        if g > 0:
            hi = b
        else:
            lo = b
        step = b - g / h if h > 0 else np.nan
        nxt = step if lo < step < hi else 0.5 * (lo + hi)
        if abs(nxt - b) <= 4 * np.finfo(np.float64).eps * b or hi - lo <= 4 * np.finfo(np.float64).eps * hi:
            b = nxt
            break
        b = nxt
    return float(spread / b)
