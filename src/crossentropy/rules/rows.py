"""Softmax cross-entropy of ``(n, K)`` rows, written once for every backend's reference path.

With ``zc = c tanh(z / c)`` under ``softcap=c`` (else ``z``), ``s = zc - max(zc)`` under the limit rule,
``S = sum_c exp(s_c)`` and ``lse = max(zc) + log S``::

    l_i = o_i log S_i - sum_c a_ic s_ic + z_loss o_i lse_i**2
    d l_i / d z_ic = (o_i (1 + 2 z_loss lse_i) softmax(zc_i)_c - a_ic) (1 - (zc_ic / c)**2)

(``sum_c a_ic s_ic`` and the ``o_i`` products are masked: ``0 * inf = 0``.) The NumPy blocked kernel runs this on
cache-sized blocks; the torch autograd Functions, the chunked linear loop and the tests run it on whole tensors;
the compiled kernel (``kernels/compiled.py``) is the fast path of the same formulas.
"""

from __future__ import annotations

from typing import NamedTuple

from .limits import masked_product, shift_by_max

_LOWEST = -3.0e38  # finite in float32 and float64, and exp(_LOWEST) = 0


class TokenStats(NamedTuple):
    """Per-token statistics of a softmax cross-entropy (``return_stats=True``; formulas in
    ``crossentropy.torch.stats``): arrays or tensors of the target's batch shape."""

    lse: object
    entropy: object
    p_target: object
    predicted: object
    correct: object

    def reshape(self, shape) -> TokenStats:
        return TokenStats(*(t.reshape(shape) for t in self))


class RowResult(NamedTuple):
    loss: object
    lse: object
    grad: object = None
    entropy: object = None
    p_target: object = None
    predicted: object = None


def capped(xp, z, softcap):
    """``softcap * tanh(z / softcap)`` (``z`` itself without a cap)."""
    return z if softcap is None else xp.tanh(z / softcap) * softcap


def softmax_rows(xp, z, coef, *, z_loss: float = 0.0, softcap=None, row_scale=None, work=None,
                 stats: bool = False, collective=None) -> RowResult:
    """Per-row losses of logits ``z (n, K)`` in their compute dtype, and, when ``row_scale (n,)`` is given, the
    gradient of ``sum_i row_scale_i l_i``.

    ``work`` (optional) is an ``(n, K)`` array that receives the shifted logits and then the gradient; it may be
    ``z`` itself. Without it one ``(n, K)`` array is allocated, and every later pass works on it in place.
    ``stats`` adds the per-row entropy of the (capped) softmax, the target's probability (index targets) and the
    argmax.

    ``collective`` makes the rows one shard of a vocabulary split across processes: ``collective.max(m)`` and
    ``collective.sum(total, linear)`` combine the row max and the two row sums over the shards (O(rows) each),
    and ``coef`` holds this shard's coefficients (``o`` is the whole row's).

    >>> import numpy as np
    >>> from crossentropy.rules.xp import NUMPY
    >>> from crossentropy.rules.targets import index_coefficients
    >>> c = index_coefficients(NUMPY, np.array([0]), 2, dtype=np.float64)
    >>> r = softmax_rows(NUMPY, np.array([[0.0, 0.0]]), c, row_scale=np.ones(1))
    >>> r.loss.tolist(), r.grad.tolist()
    ([0.6931471805599453], [[-0.5, 0.5]])
    """
    zc = capped(xp, z, softcap)
    predicted = m = None
    if stats:  # the argmax gives the row max too: one pass for both
        predicted = xp.argmax(zc)
        m = xp.gather(zc, predicted)[:, None]
    if collective is not None:
        m = collective.max(xp.amax(zc, keepdims=True))
    s, m = shift_by_max(xp, zc, out=work, m=m)
    linear = coef.target_term(s)
    s_target = xp.gather(s, coef.y) if stats and coef.index else None
    if stats:  # the entropy needs sum_c e_c s_c: e goes to a new array, with s = -inf made finite (e = 0 there)
        e = xp.exp(xp.clamp_min_(s, _LOWEST))
    else:
        e = xp.exp_(s)
    total = xp.sum(e)
    if collective is not None:
        total, linear = collective.sum(total, linear)
    log_s = xp.log(total)
    lse = m[:, 0] + log_s
    loss = masked_product(xp, coef.o, log_s) - linear
    if z_loss:
        loss = loss + masked_product(xp, coef.o, lse * lse * z_loss)
    entropy = p_target = None
    if stats:
        entropy = log_s - xp.sum(xp.mul_(s, e)) / total  # H = log S - sum_c p_c s_c
        if s_target is not None:
            p_target = xp.where(coef.keep, xp.exp(s_target - log_s), xp.scalar(0.0, total.dtype, like=total))
    grad = None
    if row_scale is not None:
        factor = masked_product(xp, coef.o, row_scale / total)
        if z_loss:
            factor = factor * (lse * (2 * z_loss) + 1)
        grad = coef.subtract_(xp.mul_(e, factor[:, None]), row_scale)
        if softcap is not None:
            grad = xp.mul_(grad, 1 - (zc / softcap) ** 2)
    return RowResult(loss, lse, grad, entropy, p_target, predicted)


def focal_rows(xp, z, coef, *, gamma: float, row_scale=None) -> RowResult:
    """Softmax focal loss (Lin et al., 2017) of rows, in log space, with ``p = softmax(z)``, ``q = 1 - p``::

        l_i = sum_c a_ic q_ic**gamma (-log p_ic)
        d l_i / d z_ij = A_ij - p_ij sum_c A_ic,   A = a q**gamma (gamma p log(p) / q - 1)

    ``q = -expm1(log p)`` and ``log(p) / q -> -1`` as ``q -> 0``, so the gradient is finite at saturation for every
    ``gamma >= 0``; ``gamma = 0`` is the cross-entropy.
    """
    s, _ = shift_by_max(xp, z)
    logp = s - xp.log(xp.sum(xp.exp(s), keepdims=True))
    q = -xp.expm1(logp)
    qg = q**gamma
    a = coef.dense(z.dtype, like=z)
    loss = xp.sum(masked_product(xp, a, qg * -logp))
    if row_scale is None:
        return RowResult(loss, None)
    p = xp.exp(logp)
    positive = q > 0
    one = xp.scalar(1.0, z.dtype, like=z)
    ratio = xp.where(positive, logp / xp.where(positive, q, one), -one)
    p_ratio = xp.mul_where(p, ratio, p != 0)
    ag = masked_product(xp, a, qg * (p_ratio * gamma - 1))
    grad = (ag - p * xp.sum(ag, keepdims=True)) * row_scale[:, None]
    return RowResult(loss, None, grad)


class LogprobResult(NamedTuple):
    logp: object
    entropy: object = None
    grad: object = None


def logprob_rows(xp, z, coef, *, temperature: float = 1.0, softcap=None, entropy: bool = False,
                 grad_logp=None, grad_entropy=None, collective=None) -> LogprobResult:
    """The log-probability of each row's target under ``q = softmax(zc / temperature)`` (``zc`` the capped logits
    ``z (n, K)``), 0 on ignored rows; with ``entropy`` also ``H = -sum_c q_c log q_c`` (0 on ignored rows). Given
    ``grad_logp`` and/or ``grad_entropy`` (``(n,)`` upstream gradients, or None), also the gradient with respect to
    ``z`` of ``sum_i grad_logp_i logp_i + grad_entropy_i H_i``::

        d logp_i / d zt_ic = [c == y_i] - q_ic            zt = zc / temperature
        d H_i / d zt_ic    = -q_ic (log q_ic + H_i)
        d zt_ic / d z_ic   = (1 - (zc_ic / softcap)**2) / temperature

    ``coef`` holds index targets (``rules.targets.index_coefficients``: ``a_y`` is 1 on kept rows, 0 on ignored
    ones). The limit rule (``limits.shift_by_max``) and the masked product (``0 * inf = 0``) hold throughout.
    ``collective`` makes the rows one shard of a vocabulary split across processes, as in ``softmax_rows``.

    >>> import numpy as np
    >>> from crossentropy.rules.xp import NUMPY
    >>> from crossentropy.rules.targets import index_coefficients
    >>> c = index_coefficients(NUMPY, np.array([0, -100]), 2, dtype=np.float64)
    >>> r = logprob_rows(NUMPY, np.array([[0.0, 0.0], [1.0, 2.0]]), c, entropy=True, grad_logp=np.ones(2))
    >>> r.logp.tolist(), r.entropy.tolist(), r.grad.tolist()
    ([-0.6931471805599453, 0.0], [0.6931471805599453, 0.0], [[0.5, -0.5], [0.0, 0.0]])
    """
    zc = capped(xp, z, softcap)
    zt = zc if temperature == 1.0 else zc / temperature
    m = None if collective is None else collective.max(xp.amax(zt, keepdims=True))
    s, _ = shift_by_max(xp, zt, m=m)
    want_entropy = entropy or grad_entropy is not None
    e = xp.exp(s)
    sums = [xp.sum(e), coef.target_term(s)]
    if want_entropy:
        sums.append(xp.sum(masked_product(xp, e, s)))
    if collective is not None:
        sums = collective.sum(*sums)
    total, linear = sums[0], sums[1]
    log_s = xp.log(total)
    zero = xp.scalar(0.0, total.dtype, like=total)
    logp = xp.where(coef.keep, linear - log_s, zero)
    h = xp.where(coef.keep, log_s - sums[2] / total, zero) if want_entropy else None
    if grad_logp is None and grad_entropy is None:
        return LogprobResult(logp, h if entropy else None)
    q = xp.mul_(e, xp.reciprocal(total)[:, None])
    grad = None
    if grad_logp is not None:  # grad_logp_i ([c == y_i] - q_ic); a_y is 0 on ignored rows
        gl = xp.where(coef.keep, grad_logp, zero)
        grad = coef.subtract_(q * -gl[:, None], -gl)
    if grad_entropy is not None:  # - grad_entropy_i q_ic (log q_ic + H_i), masked: 0 * inf = 0
        ge = xp.where(coef.keep, grad_entropy, zero)
        log_q = xp.sub_(s, log_s[:, None])  # s is not needed after this
        g_h = masked_product(xp, q, masked_product(xp, ge[:, None], log_q + h[:, None]))
        grad = -g_h if grad is None else xp.sub_(grad, g_h)
    if temperature != 1.0:
        grad = xp.mul_(grad, 1.0 / temperature)
    if softcap is not None:
        grad = xp.mul_(grad, 1 - (zc / softcap) ** 2)
    return LogprobResult(logp, h if entropy else None, grad)
