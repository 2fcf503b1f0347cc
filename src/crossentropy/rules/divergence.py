"""Distillation divergences of ``(n, V)`` rows, written once for the NumPy core and the torch Functions.

With ``S = softmax(z_student / tau)`` and ``T = softmax(z_teacher / tau)`` (``log_softmax`` under the limit rule,
``rules/limits.py``), ``tau = options.temperature`` and ``0 < beta < 1``::

    "forward_kl"  temperature**2 KL(T || S) = temperature**2 sum_c T_c (log T_c - log S_c)
    "reverse_kl"  temperature**2 KL(S || T) = temperature**2 sum_c S_c (log S_c - log T_c)
    "jsd"         temperature**2 (beta KL(T || M) + (1 - beta) KL(S || M)),   log M = logaddexp(log beta + log T,
                                                                                  log(1 - beta) + log S)

The gradient with respect to the student's logits (``G_c`` the derivative of the divergence by ``S_c``) is
``tau S_c (G_c - sum_j S_j G_j)``: ``tau (S - T)``, ``tau (S f - S KL)`` with ``f = log S - log T``, and
``temperature (g - S sum_j g_j)`` with ``g = (1 - beta) S (log S - log M)``. Every ``p log p`` term is a masked product
(``0 log 0 = 0``; NaN propagates). Per-row values are clipped below at 0 (rounding can leave -1 ulp). Rows whose
token is ignored give 0 and no gradient; "mean" is over the kept rows (``rules/reduction.py``).

The sparse form takes a teacher's top-k log-probs: the divergence is over k + 1 bins, the k classes and one tail
bin holding the rest of each distribution's mass.

Arrays passed in are fresh temporaries of the caller or are left alone: the functions work in place on what they
allocate themselves, so the torch path keeps its memory economy. Nothing reads a value on the host except through
``xp.checkable`` (the limit rule's fast path).
"""

from __future__ import annotations

import math

from .errors import InputTypeError, InputValueError
from .limits import log_softmax, logsumexp, masked_product
from .options import DistillationOptions


def check_vocabulary(vocab: int, name: str) -> None:
    """A distillation needs distributions over at least one class: ``vocab >= 1``."""
    if vocab < 1:
        raise InputValueError(f"{name} must score at least one class, but its vocabulary (class) dim has size 0. "
                              f"A divergence needs distributions over one class or more; drop the empty tensors.")


def kept_tokens(xp, target, batch_shape: tuple, ignore_index: int):
    """The flat mask of kept rows (``target != ignore_index``, checked with the options), or None when ``target``
    is None (every row kept). ``target`` only marks ignored tokens: it must be integer, of the student's batch
    shape."""
    if target is None:
        return None
    if not xp.is_integer(target):
        raise InputTypeError(f"target must hold integer labels (it only marks ignored tokens), but got dtype "
                             f"{target.dtype}. Pass None to keep every token.")
    if tuple(target.shape) != tuple(batch_shape):
        raise InputValueError(f"target must have the student's shape without the class axis, {tuple(batch_shape)}, "
                              f"but got shape {tuple(target.shape)}.")
    return (target != ignore_index).reshape(-1)


def check_sparse_teacher(xp, indices, logprobs, vocab: int, batch_shape: tuple) -> None:
    """Top-k teacher checks: the shapes agree, indices in range and distinct per row, log-probs <= 0 summing to
    at most 1 (within sqrt(eps) of their dtype). Values are read only where ``xp.checkable``."""
    if tuple(indices.shape) != tuple(logprobs.shape) or tuple(indices.shape[:-1]) != tuple(batch_shape):
        raise InputValueError(f"teacher_indices and teacher_logprobs must both have shape {tuple(batch_shape)} + "
                              f"(k,), the student's batch shape and k top classes, but got {tuple(indices.shape)} "
                              f"and {tuple(logprobs.shape)}.")
    k = indices.shape[-1]
    if not 1 <= k <= vocab:
        raise InputValueError(f"teacher_indices must hold between 1 and {vocab} (the student's vocabulary) classes "
                              f"per token, but got k={k}. The vocabularies must match.")
    if not (xp.checkable(indices) and xp.checkable(logprobs)) or not xp.size(indices):
        return
    low, high = int(indices.min()), int(indices.max())
    if low < 0 or high >= vocab:
        raise InputValueError(f"teacher_indices must be classes in [0, {vocab - 1}] of the student's vocabulary, "
                              f"but they range from {low} to {high}. The vocabularies must match.")
    ordered = xp.sort(indices)
    if k > 1 and xp.any(ordered[..., 1:] == ordered[..., :-1]):
        raise InputValueError("teacher_indices has a repeated class within a token; each token's k indices must be "
                              "distinct (take them from a top-k).")
    if xp.any(logprobs > 0):
        raise InputValueError(f"teacher_logprobs must be log-probabilities (<= 0), but the largest is "
                              f"{float(logprobs.max())}. Pass log_softmax values, not logits.")
    excess = logsumexp(xp, logprobs)
    if xp.any(excess > math.sqrt(xp.eps(logprobs))):
        raise InputValueError(f"teacher_logprobs of a token must sum (as probabilities) to at most 1, but one sums "
                              f"to {math.exp(float(excess.max())):.8g}. Pass log_softmax values of the teacher.")


def kept_total(xp, kept, like):
    """The number of kept rows (float64, on ``like``'s device): the denominator of "mean"."""
    return xp.scalar(float(like.shape[0]), "float64", like=like) if kept is None else xp.total(kept)


def divergence_rows(xp, ls, lt, divergence: str, beta: float, with_grad: bool):
    """``(values (n,), grad or None)``: the divergence of rows ``(log S, log T)`` and, with ``with_grad``, its
    gradient with respect to logits whose log-softmax is ``ls`` (before the ``tau`` factors). ``ls`` and ``lt`` are
    overwritten.

    >>> import numpy as np
    >>> from crossentropy.rules.xp import NUMPY
    >>> ls, lt = np.log([[0.5, 0.5]]), np.log([[0.25, 0.75]])
    >>> v, g = divergence_rows(NUMPY, ls, lt, "forward_kl", 0.5, True)
    >>> np.round(v, 6).tolist(), g.tolist()  # KL(T || S), S - T
    ([0.130812], [[0.25, -0.25]])
    """
    grad = None
    if divergence == "forward_kl":
        t = xp.exp(lt)
        d = xp.sub(lt, ls)
        values = xp.sum(masked_product(xp, t, d, out=d))
        if with_grad:
            grad = xp.sub_(xp.exp_(ls), t)
    elif divergence == "reverse_kl":
        s = xp.exp(ls)
        d = xp.sub(ls, lt)
        d = masked_product(xp, s, d, out=d)
        values = xp.sum(d)
        if with_grad:
            grad = xp.sub_(d, masked_product(xp, s, values[:, None], out=s))
    else:
        s, t = xp.exp(ls), xp.exp(lt)
        lm = xp.logaddexp(lt + math.log(beta), ls + math.log1p(-beta))
        s_term = xp.sub(ls, lm, out=ls)
        s_term = masked_product(xp, s, s_term, out=s_term)
        t_term = xp.sub(lt, lm, out=lm)
        t_term = masked_product(xp, t, t_term, out=t_term)
        values = xp.sum(t_term) * beta + xp.sum(s_term) * (1 - beta)
        if with_grad:
            g = xp.mul_(s_term, 1 - beta)
            grad = xp.sub_(g, masked_product(xp, s, xp.sum(g, keepdims=True), out=s))
    return xp.fill_where_(values, values < 0, 0.0), grad


# Above this temperature forward KL takes the cancellation-free form (``scaled_forward_kl``): the textbook form's
# float32 error grows as tau**2 (4e-6 at tau = 2, 2e-5 at 4, 7e-5 at 8 on 1000 classes), and the scaled form costs
# several more passes over the logits (docs/design.md)
SCALED_ABOVE = 2.0

# phi(d) / d**2 = sum_{n >= 2} (n - 1) / n! d**(n - 2), phi(d) = d e**d - expm1(d), for |d| < SERIES_BELOW (the
# terms left out are below float64's eps there); above it the closed form loses at most ~1 / SERIES_BELOW ulps
SERIES_BELOW = 0.1
PHI_SERIES = tuple((n - 1) / math.factorial(n) for n in range(2, 12))


def _ratio(xp, num, den):
    """``num / den``, 1 where ``den`` is 0 (the limits of ``expm1(m) / m`` and ``log1p(x) / x``)."""
    zero = den == 0
    one = xp.scalar(1.0, den.dtype, like=den)
    return xp.where(zero, one, num / xp.where(zero, one, den))


def _phi_over_square(xp, d):
    """``phi(d) / d**2`` with ``phi(d) = d e**d - expm1(d) = 1 + (d - 1) e**d >= 0``, without cancellation: the
    series below ``SERIES_BELOW``, the closed form above."""
    small = abs(d) < SERIES_BELOW
    series = xp.scalar(PHI_SERIES[-1], d.dtype, like=d)
    for c in reversed(PHI_SERIES[:-1]):
        series = series * d + c
    big = xp.where(small, xp.scalar(1.0, d.dtype, like=d), d)
    return xp.where(small, series, (1 + (big - 1) * xp.exp(big)) / (big * big))


def scaled_forward_kl(xp, zs, zt, temperature: float, *, divided: bool, with_grad: bool):
    """``tau**2 KL(T || S)`` per row and its gradient with respect to the undivided student logits, with no
    cancellation at large ``tau`` (where S and T are nearly uniform). With ``w = zt - zs``, ``s = S``::

        u = w - tau log(sum_c s_c exp(w_c / tau))       (= tau (log T - log S))
        tau**2 KL = sum_c s_c u_c**2 phi(d_c) / d_c**2  d = u / tau,  phi(d) = d e**d - expm1(d) >= 0
        gradient  = -s_c u_c expm1(d_c) / d_c           (= tau (S - T))

    Every term is non-negative and no ``tau**2`` is formed, so it holds up to ``tau`` near the float range;
    as ``tau`` grows it tends to half the variance of ``w`` under the uniform ``S``. Rows with a non-finite
    ``w`` are left to the caller (their values here are not meaningful).

    >>> import numpy as np
    >>> from crossentropy.rules.xp import NUMPY
    >>> v, _ = scaled_forward_kl(NUMPY, np.zeros((1, 2)), np.array([[0.0, 2.0]]), 1e200, divided=False,
    ...                          with_grad=False)
    >>> v.tolist()  # half the variance of w = [0, 2]
    [0.5]
    """
    inv = 1.0 / temperature
    if divided:
        w = masked_product(xp, zt - zs, xp.scalar(temperature, zs.dtype, like=zs))
        s = xp.exp(log_softmax(xp, zs))
    else:
        w = zt - zs
        s = xp.exp(log_softmax(xp, zs * inv))
    m = w * inv
    b = xp.sum(s * w * _ratio(xp, xp.expm1(m), m), keepdims=True)
    u = w - b * _ratio(xp, xp.log1p(b * inv), b * inv)
    d = u * inv
    values = xp.sum(s * u * u * _phi_over_square(xp, d))
    grad = -(s * u * _ratio(xp, xp.expm1(d), d)) if with_grad else None
    return values, grad


def _finish(xp, values, grad, kept, temperature: float, row_scale, scaled: bool = False):
    """``tau**2`` times the values and ``tau * row_scale`` times the gradient (``row_scale`` a scalar or one factor
    per row; the gradient is then that of ``sum_i row_scale_i l_i``); ignored rows zeroed. ``scaled``: the values
    and gradient already carry their ``tau`` factors. ``tau**2`` beyond the float range is inf, and 0 * inf = 0."""
    if not scaled:
        values = masked_product(xp, values, xp.scalar(temperature * temperature, values.dtype, like=values))
    if grad is not None:
        factor = (1.0 if scaled else temperature) if row_scale is None else row_scale * (1.0 if scaled else temperature)
        grad = xp.mul_(grad, factor[:, None] if getattr(factor, "ndim", 0) else factor)
    if kept is not None:
        dropped = ~kept
        values = xp.fill_where_(values, dropped, 0.0)
        if grad is not None:
            grad = xp.fill_where_(grad, dropped[:, None], 0.0)
    return values, grad


def dense_rows(xp, z_student, z_teacher, options: DistillationOptions, kept=None, row_scale=None, *, with_grad: bool,
               divided: bool = False):
    """``(temperature**2 * per-row divergence, its gradient w.r.t. z_student)`` for rows of logits in the compute dtype
    (already divided by ``temperature`` when ``divided``: they are then overwritten), the gradient times ``row_scale``.

    >>> import numpy as np
    >>> from crossentropy.rules.xp import NUMPY
    >>> v, g = dense_rows(NUMPY, np.zeros((1, 2)), np.log([[1.0, 3.0]]), DistillationOptions(),
    ...                   with_grad=True)
    >>> np.round(v, 6).tolist(), g.tolist()
    ([0.130812], [[0.25, -0.25]])
    """
    divergence, beta, temperature = options.divergence, options.beta, options.temperature
    inv = 1.0 / temperature  # times the reciprocal: a tau beyond the compute dtype's range is no overflow
    zs = z_student if divided else z_student * inv
    zt = z_teacher if divided else z_teacher * inv
    if divergence == "forward_kl" and temperature > SCALED_ABOVE:  # flattened distributions: the cancellation-free form
        values, grad = scaled_forward_kl(xp, z_student, z_teacher, temperature, divided=divided, with_grad=with_grad)
        w = z_teacher - z_student
        finite = xp.sum(xp.astype(xp.isinf(w) | xp.isnan(w), w.dtype)) == 0
        if not (xp.checkable(finite) and not xp.any(~finite)):  # rows with infinities: the plain form
            plain, plain_grad = divergence_rows(xp, log_softmax(xp, zs), log_softmax(xp, zt), divergence, beta,
                                                with_grad)
            square = xp.scalar(temperature * temperature, plain.dtype, like=plain)
            values = xp.where(finite, values, masked_product(xp, plain, square))
            if with_grad:
                grad = xp.where(finite[:, None], grad, plain_grad * temperature)
        return _finish(xp, values, grad, kept, temperature, row_scale, scaled=True)
    ls, lt = log_softmax(xp, zs, out=zs), log_softmax(xp, zt, out=zt)
    values, grad = divergence_rows(xp, ls, lt, divergence, beta, with_grad)
    return _finish(xp, values, grad, kept, temperature, row_scale)


def tail_log_mass(xp, logprobs):
    """``log(1 - sum(exp(logprobs)))`` along the last axis (kept): the log of the mass outside the given classes,
    ``-inf`` where it rounds to ``<= 0``. ``log1mexp`` is accurate on both sides of ``log 2`` (Maechler 2012).

    >>> import numpy as np
    >>> from crossentropy.rules.xp import NUMPY
    >>> np.round(np.exp(tail_log_mass(NUMPY, np.log([[0.5, 0.25], [0.5, 0.5]]))), 6).tolist()
    [[0.25], [0.0]]
    """
    lse = logsumexp(xp, logprobs)
    tail = xp.where(lse > -math.log(2), xp.log(-xp.expm1(lse)), xp.log1p(-xp.exp(lse)))
    return xp.where(lse >= 0, -xp.inf, tail)


def sparse_rows(xp, z_student, indices, logprobs, options: DistillationOptions, kept=None, row_scale=None, *,
                with_grad: bool):
    """The k + 1-bin divergence of student logit rows ``(n, V)`` against a teacher's top-k ``indices (n, k)`` and
    ``logprobs (n, k)`` (``log T`` at those classes), and its gradient w.r.t. the student's logits: a class
    outside the top-k gets the tail bin's gradient times ``S_c / S_tail``. With k = V the tail is empty (what
    rounding leaves of ``1 - sum T`` is not mass) and the value is the dense one.

    >>> import numpy as np
    >>> from crossentropy.rules.xp import NUMPY
    >>> v, _ = sparse_rows(NUMPY, np.zeros((1, 4)), np.array([[0]]), np.log([[0.5]]),
    ...                    DistillationOptions(), with_grad=False)
    >>> np.round(v, 6).tolist()  # KL([1/2, 1/2] || [1/4, 3/4])
    [0.143841]
    """
    divergence, beta, temperature = options.divergence, options.beta, options.temperature
    zs = z_student / temperature
    ls_full = log_softmax(xp, zs, out=zs)
    ls_top = xp.take(ls_full, indices)
    rest = xp.scatter_(ls_full, indices, -xp.inf)
    ls_tail = logsumexp(xp, rest)
    ls = xp.concat([ls_top, ls_tail])
    if indices.shape[-1] == z_student.shape[-1]:
        lt_tail = xp.sub_(xp.zeros(ls_tail.shape, logprobs.dtype, like=logprobs), xp.inf)
    else:
        lt_tail = tail_log_mass(xp, logprobs)
    lt = xp.concat([logprobs, lt_tail])
    values, bins = divergence_rows(xp, ls, lt, divergence, beta, with_grad)
    grad = None
    if with_grad:
        gone = rest == -xp.inf
        share = xp.fill_where_(xp.exp_(xp.sub(rest, ls_tail, out=rest)), gone, 0.0)
        grad = xp.scatter_(xp.mul_(share, bins[:, -1:]), indices, bins[:, :-1])
    return _finish(xp, values, grad, kept, temperature, row_scale)
