"""The Triton kernels (``@triton.jit``); imported only by the adapters in ``rows.py``, never at package import.

Every kernel runs one program per row and loops over the vocabulary in blocks of ``BLOCK`` classes. Values are
loaded in the input's dtype and upcast to the compute dtype ``ACC`` (float32, or float64 for float64 inputs) before
any arithmetic; gradients are computed in ``ACC`` and stored in the output's dtype. Scalar options come in the
``PARAMS`` tensor (``ACC``), never as Python floats. ``tanh`` is written from ``exp`` (no ``libdevice``).

The infinite-logit limit rule (``rules/limits.py``) is ``_shift``: ``z - m``, except ``0`` where the max ``m`` is
infinite and ``z == m``. The online row max ``m`` and sum ``S = sum_c exp(shift(z_c, m))`` are rescaled by
``exp(shift(m_old, m_new))``, which is the same rule applied to the old max.
"""

from __future__ import annotations

import triton
import triton.language as tl

# PARAMS slots
Z_LOSS, SOFTCAP, INV_T, ALPHA, BETA, LOG_BETA, LOG_1MBETA, TEMPERATURE = (tl.constexpr(i) for i in range(8))
LOWEST = tl.constexpr(-3.0e38)  # rules/rows.py's clamp of shifted logits in the entropy: exp(LOWEST) = 0


@triton.jit
def _shift(z, m):
    """``z - m`` under the limit rule."""
    d = z - m
    return tl.where(z == m, tl.where(tl.abs(m) == float("inf"), 0.0, d), d)


@triton.jit
def _finite(z):
    return tl.abs(z) < float("inf")


@triton.jit
def _masked(a, x):
    """``a * x`` with ``0 * x = 0`` for every ``x``."""
    return tl.where(a != 0, a * x, 0.0)


@triton.jit
def _tanh(x):
    """``tanh(x) = sign(x) (1 - e) / (1 + e)``, ``e = exp(-2 |x|)``: no overflow for any ``|x|``."""
    e = tl.exp(-2.0 * tl.abs(x))
    t = (1.0 - e) / (1.0 + e)
    return tl.where(x < 0, -t, t)


@triton.jit
def _capped(x, softcap, inv_t, HAS_SOFTCAP: tl.constexpr):
    """``softcap(x) / T``: ``softcap tanh(x / softcap) inv_t`` (``x inv_t`` without a softcap)."""
    if HAS_SOFTCAP:
        x = softcap * _tanh(x / softcap)
    return x * inv_t


@triton.jit
def softmax_rows_kernel(X, stride_x, G, stride_g, P, stride_p, V,
                        Y, AY, U, W, O, SROW, RS, PARAMS,
                        LOSS, MAX, TOTAL, LSE, LINEAR, MASS, ENT, LOGPT, ARGMAX,
                        ACC: tl.constexpr, INDEX: tl.constexpr, HAS_W: tl.constexpr, HAS_U: tl.constexpr,
                        HAS_SOFTCAP: tl.constexpr, HAS_Z_LOSS: tl.constexpr, STATS: tl.constexpr, FORWARD: tl.constexpr,
                        GRAD: tl.constexpr, BLOCK: tl.constexpr):
    """Softmax cross-entropy of one row (``rules.rows.softmax_rows``), with ``zc = softcap(x) * inv_t``.

    Pass 1 (``FORWARD``), online over the blocks: ``m = max zc``, ``S = sum exp(shift(zc, m))``, the target term
    ``linear = sum_c a_c shift(zc_c, m)`` (masked products), ``mass = sum_c a_c`` of the classes seen, and with
    ``STATS`` the entropy ``log S - sum_c e_c s_c / S``, ``log p_y = shift(zc_y, m) - log S`` and the first
    argmax (the first NaN where there is one, as ``torch.argmax``).
    It writes ``MAX``, ``TOTAL``, ``LINEAR``, ``MASS``, ``LSE = m + log S`` and
    ``LOSS = o log S - linear + z_loss o lse**2`` (products with ``o`` masked). Without ``FORWARD`` the row's
    ``m`` and ``S`` are read from ``MAX`` and ``TOTAL`` (the whole row's, after a vocabulary-parallel combine).

    Pass 2 (``GRAD``), with ``r = RS[row]`` and ``f = o r / S * (1 + 2 z_loss lse)``::

        G_c = (f exp(shift(zc_c, m)) - r a_c) * inv_t * (1 - (zc_c / (softcap inv_t))**2 under a softcap)

    ``a_c = a_y [c == y] + u b_c`` for index targets (``b = w`` or 1), ``s_i w_c (alpha T_c + beta)`` for
    probability targets ``T`` (the row ``P``).
    """
    row = tl.program_id(0).to(tl.int64)
    x_row = X + row * stride_x
    softcap = tl.load(PARAMS + SOFTCAP)
    inv_t = tl.load(PARAMS + INV_T)
    o = tl.load(O + row)
    if INDEX:
        y = tl.load(Y + row)
        a_y = tl.load(AY + row)
        if HAS_U:
            u = tl.load(U + row)
    else:
        s_row = tl.load(SROW + row)
        alpha = tl.load(PARAMS + ALPHA)
        beta = tl.load(PARAMS + BETA)
    ninf = float("-inf")
    if FORWARD:
        m = tl.full((), ninf, ACC)
        total = tl.zeros((), ACC)
        ent = tl.zeros((), ACC)
        arg = tl.zeros((), tl.int64)
        nans = tl.zeros((), tl.int32)  # tl.max skips NaN; the rules' row max is NaN where a logit is
        ref = tl.full((), ninf, ACC)  # the max of the finite logits with a_c != 0: the spread's reference point
        spread = tl.zeros((), ACC)  # sum a_c (zc_c - ref) over them
        fin_mass = tl.zeros((), ACC)  # sum a_c over them
        n_neg = tl.zeros((), ACC)  # how many a_c != 0 sit on a -inf logit
        mass = tl.zeros((), ACC)
        for start in range(0, V, BLOCK):
            offs = start + tl.arange(0, BLOCK)
            inside = offs < V
            x = tl.load(x_row + offs, mask=inside, other=0.0).to(ACC)
            zc = tl.where(inside, _capped(x, softcap, inv_t, HAS_SOFTCAP), ninf)
            top = tl.max(zc, 0)
            m_new = tl.maximum(m, top)
            rescale = tl.exp(_shift(m, m_new))
            e = tl.where(inside, tl.exp(_shift(zc, m_new)), 0.0)
            if STATS:
                # sum_c e_c s_c against the new max; the old terms vanish where the rescale underflows, and s is
                # clamped at LOWEST (an overflowing z - m times e = 0 is 0), as in rules/rows.py
                kept_old = _finite(m) & _finite(m_new) & (rescale > 0)
                ent = tl.where(kept_old, rescale * (ent + total * (m - m_new)), 0.0)
                s_block = tl.maximum(zc - m_new, LOWEST)
                ent += tl.sum(tl.where(_finite(zc), tl.where(_finite(m_new), e * s_block, 0.0), 0.0), 0)
                first = tl.min(tl.where(zc == top, offs, V), 0).to(tl.int64)
                first_nan = tl.min(tl.where(zc != zc, offs, V), 0).to(tl.int64)  # NaN is the max, as in torch
                arg = tl.where(nans != 0, arg, tl.where(first_nan < V, first_nan, tl.where(top > m, first, arg)))
            nans += tl.sum(tl.where(zc != zc, 1, 0), 0)
            total = total * rescale + tl.sum(e, 0)
            m = m_new
            b = tl.zeros((BLOCK,), ACC)
            if INDEX:
                if HAS_U:
                    if HAS_W:
                        b = tl.load(W + offs, mask=inside, other=0.0).to(ACC)
                    else:
                        b = tl.where(inside, 1.0, 0.0).to(ACC)
            else:
                t = tl.load(P + row * stride_p + offs, mask=inside, other=0.0).to(ACC)
                b = s_row * (alpha * t + beta)
                if HAS_W:
                    b = b * tl.load(W + offs, mask=inside, other=0.0).to(ACC)
                b = tl.where(inside, b, 0.0)
            if (not INDEX) or HAS_U:
                weighted = b != 0
                kept = weighted & _finite(zc)
                ref_new = tl.maximum(ref, tl.max(tl.where(kept, zc, ninf), 0))
                spread = tl.where(fin_mass != 0, spread + fin_mass * (ref - ref_new), spread)
                spread += tl.sum(tl.where(kept, b * (zc - ref_new), 0.0), 0)
                ref = ref_new
                fin_mass += tl.sum(tl.where(kept, b, 0.0), 0)
                n_neg += tl.sum(tl.where(weighted & (zc == ninf), 1.0, 0.0), 0)
                mass += tl.sum(b, 0)
        m = tl.where(nans != 0, float("nan"), m)
        # the spread term sum_c a_c shift(zc_c, m) of the whole row, under the limit rule
        at_limit = tl.abs(m) == float("inf")
        lost = (fin_mass != 0) | (n_neg != 0)
        finite_part = spread + _masked(fin_mass, ref - m) + tl.where(n_neg != 0, ninf, 0.0)
        spread_term = tl.where(at_limit, tl.where((m > 0) & lost, ninf, 0.0), finite_part)
        if INDEX:
            z_y = _capped(tl.load(x_row + y).to(ACC), softcap, inv_t, HAS_SOFTCAP)
            s_y = _shift(z_y, m)
            linear = _masked(a_y, s_y)
            if HAS_U:
                linear += _masked(u, spread_term)
                mass = a_y + u * mass
            else:
                mass = a_y + mass
        else:
            linear = spread_term
        log_s = tl.log(total)
        lse = m + log_s
        loss = _masked(o, log_s) - linear
        if HAS_Z_LOSS:
            loss += _masked(o, lse * lse * tl.load(PARAMS + Z_LOSS))
        tl.store(LOSS + row, loss)
        tl.store(MAX + row, m)
        tl.store(TOTAL + row, total)
        tl.store(LSE + row, lse)
        tl.store(LINEAR + row, linear)
        tl.store(MASS + row, mass)
        if STATS:
            tl.store(ENT + row, log_s - tl.where(at_limit, 0.0, ent) / total)
            tl.store(ARGMAX + row, arg)
            if INDEX:
                tl.store(LOGPT + row, s_y - log_s)
    else:
        m = tl.load(MAX + row)
        total = tl.load(TOTAL + row)
        lse = m + tl.log(total)
    if GRAD:
        r = tl.load(RS + row)
        factor = _masked(o, r / total)
        if HAS_Z_LOSS:
            factor = factor * (lse * (2.0 * tl.load(PARAMS + Z_LOSS)) + 1.0)
        g_row = G + row * stride_g
        for start in range(0, V, BLOCK):
            offs = start + tl.arange(0, BLOCK)
            inside = offs < V
            x = tl.load(x_row + offs, mask=inside, other=0.0).to(ACC)
            zc = _capped(x, softcap, inv_t, HAS_SOFTCAP)
            g = tl.exp(_shift(zc, m)) * factor
            if INDEX:
                g -= tl.where(offs == y, a_y * r, 0.0)
                if HAS_U:
                    if HAS_W:
                        g -= (u * r) * tl.load(W + offs, mask=inside, other=0.0).to(ACC)
                    else:
                        g -= u * r
            else:
                t = tl.load(P + row * stride_p + offs, mask=inside, other=0.0).to(ACC)
                a = s_row * (alpha * t + beta)
                if HAS_W:
                    a = a * tl.load(W + offs, mask=inside, other=0.0).to(ACC)
                g -= a * r
            if HAS_SOFTCAP:
                q = zc / (softcap * inv_t)
                g = g * (1.0 - q * q)
            g = g * inv_t
            tl.store(g_row + offs, g.to(G.dtype.element_ty), mask=inside)


@triton.jit
def logprob_backward_kernel(X, stride_x, G, stride_g, V, Y, KEEP, MAX, TOTAL, ENT, GLOGP, GENT, PARAMS,
                            ACC: tl.constexpr, HAS_SOFTCAP: tl.constexpr, BLOCK: tl.constexpr):
    """The gradient of ``sum_i (g_logp_i log q_iy + g_ent_i H_i)`` w.r.t. the raw logits ``x`` of one row, with
    ``zc = softcap(x) / T``, ``log q_c = shift(zc_c, m) - log S`` (``m``, ``S`` and ``H`` from the forward pass)::

        G_c = (g_logp ([c == y] - q_c) - g_ent q_c (log q_c + H)) / T * (1 - tanh(x_c / softcap)**2 under a softcap)

    (``q log q`` masked: 0 where ``q = 0``); 0 on an ignored row.
    """
    row = tl.program_id(0).to(tl.int64)
    softcap = tl.load(PARAMS + SOFTCAP)
    inv_t = tl.load(PARAMS + INV_T)
    y = tl.load(Y + row)
    keep = tl.load(KEEP + row) != 0
    m = tl.load(MAX + row)
    log_s = tl.log(tl.load(TOTAL + row))
    h = tl.load(ENT + row)
    g_logp = tl.where(keep, tl.load(GLOGP + row).to(ACC), 0.0)
    g_ent = tl.where(keep, tl.load(GENT + row).to(ACC), 0.0)
    for start in range(0, V, BLOCK):
        offs = start + tl.arange(0, BLOCK)
        inside = offs < V
        x = tl.load(X + row * stride_x + offs, mask=inside, other=0.0).to(ACC)
        zc = _capped(x, softcap, inv_t, HAS_SOFTCAP)
        log_q = _shift(zc, m) - log_s
        q = tl.exp(log_q)
        g = g_logp * (tl.where(offs == y, 1.0, 0.0) - q) - _masked(g_ent, _masked(q, log_q + h))
        if HAS_SOFTCAP:
            c = zc / (softcap * inv_t)
            g = g * (1.0 - c * c)
        g = tl.where(keep, g * inv_t, 0.0)
        tl.store(G + row * stride_g + offs, g.to(G.dtype.element_ty), mask=inside)


@triton.jit
def _online(z_row, V, inv_t, ACC: tl.constexpr, BLOCK: tl.constexpr):
    """``(m, log S)`` of ``z / T`` over one row, online, under the limit rule."""
    m = tl.full((), float("-inf"), ACC)
    total = tl.zeros((), ACC)
    for start in range(0, V, BLOCK):
        offs = start + tl.arange(0, BLOCK)
        inside = offs < V
        z = tl.where(inside, tl.load(z_row + offs, mask=inside, other=0.0).to(ACC) * inv_t, float("-inf"))
        m_new = tl.maximum(m, tl.max(z, 0))
        total = total * tl.exp(_shift(m, m_new)) + tl.sum(tl.where(inside, tl.exp(_shift(z, m_new)), 0.0), 0)
        m = m_new
    return m, tl.log(total)


@triton.jit
def _log_ratio(a, b):
    """``a - b`` of two log-probabilities, 0 where both are ``-inf`` (the masked products need only finiteness
    where their factor is 0)."""
    return tl.where((a == float("-inf")) & (b == float("-inf")), 0.0, a - b)


@triton.jit
def _log_softmax_blocks(s_row, t_row, start, V, inv_t, ms, log_ss, mt, log_st, ACC: tl.constexpr,
                        BLOCK: tl.constexpr):
    """``(offs, inside, log S, log T)`` of the block at ``start`` of a student and a teacher row, each
    ``shift(z / T, m) - log S`` from its row's ``(m, log S)``."""
    offs = start + tl.arange(0, BLOCK)
    inside = offs < V
    ls = _shift(tl.load(s_row + offs, mask=inside, other=0.0).to(ACC) * inv_t, ms) - log_ss
    lt = _shift(tl.load(t_row + offs, mask=inside, other=0.0).to(ACC) * inv_t, mt) - log_st
    return offs, inside, ls, lt


@triton.jit
def _log_mixture(lt, ls, log_beta, log_1mbeta):
    """``log M = logaddexp(log beta + log T, log(1 - beta) + log S)`` (``-inf`` where both are)."""
    a = lt + log_beta
    c = ls + log_1mbeta
    top = tl.maximum(a, c)
    return tl.where(top == float("-inf"), top, top + tl.log(tl.exp(_log_ratio(a, top)) + tl.exp(_log_ratio(c, top))))


@triton.jit
def distill_rows_kernel(ZS, stride_s, ZT, stride_t, G, stride_g, V, KEEP, RS, LOSS, PARAMS,
                        ACC: tl.constexpr, DIVERGENCE: tl.constexpr, GRAD: tl.constexpr, BLOCK: tl.constexpr):
    """One row of ``rules.divergence.dense_rows``: with ``log S = log_softmax(z_s / T)``,
    ``log T = log_softmax(z_t / T)`` (``DIVERGENCE`` 0, 1, 2 for forward_kl, reverse_kl, jsd)::

        forward_kl  sum_c T_c (log T_c - log S_c)                 grad  S - T
        reverse_kl  K = sum_c S_c (log S_c - log T_c)             grad  S (log S - log T) - S K
        jsd         beta sum T (log T - log M) + (1 - beta) sum S (log S - log M),
                    log M = logaddexp(log beta + log T, log(1 - beta) + log S)
                                                                  grad  g - S sum g,  g = (1 - beta) S (log S - log M)

    the value clipped below at 0 and times ``T**2``, the gradient times ``T RS[row]``; an ignored row gives 0.
    Pass 1 finds both normalisers online; pass 2 sums the value (and writes the forward_kl gradient); pass 3
    writes the other gradients.
    """
    row = tl.program_id(0).to(tl.int64)
    temperature = tl.load(PARAMS + TEMPERATURE)
    inv_t = tl.load(PARAMS + INV_T)
    beta = tl.load(PARAMS + BETA)
    log_beta = tl.load(PARAMS + LOG_BETA)
    log_1mbeta = tl.load(PARAMS + LOG_1MBETA)
    keep = tl.load(KEEP + row) != 0
    s_row, t_row, g_row = ZS + row * stride_s, ZT + row * stride_t, G + row * stride_g
    ms, log_ss = _online(s_row, V, inv_t, ACC, BLOCK)
    mt, log_st = _online(t_row, V, inv_t, ACC, BLOCK)
    scale = temperature
    if GRAD:
        scale = tl.load(RS + row) * temperature
    value = tl.zeros((), ACC)
    g_sum = tl.zeros((), ACC)
    for start in range(0, V, BLOCK):
        offs, inside, ls, lt = _log_softmax_blocks(s_row, t_row, start, V, inv_t, ms, log_ss, mt, log_st, ACC, BLOCK)
        s = tl.exp(ls)
        t = tl.exp(lt)
        if DIVERGENCE == 0:
            value += tl.sum(tl.where(inside, _masked(t, _log_ratio(lt, ls)), 0.0), 0)
            if GRAD:
                tl.store(g_row + offs, tl.where(keep, (s - t) * scale, 0.0).to(G.dtype.element_ty), mask=inside)
        elif DIVERGENCE == 1:
            value += tl.sum(tl.where(inside, _masked(s, _log_ratio(ls, lt)), 0.0), 0)
        else:
            lm = _log_mixture(lt, ls, log_beta, log_1mbeta)
            s_term = tl.where(inside, _masked(s, _log_ratio(ls, lm)), 0.0)
            value += beta * tl.sum(tl.where(inside, _masked(t, _log_ratio(lt, lm)), 0.0), 0) \
                + (1.0 - beta) * tl.sum(s_term, 0)
            g_sum += (1.0 - beta) * tl.sum(s_term, 0)
    tl.store(LOSS + row, tl.where(keep, tl.where(value < 0, 0.0, value) * (temperature * temperature), 0.0))
    if GRAD:
        if DIVERGENCE != 0:
            for start in range(0, V, BLOCK):
                offs, inside, ls, lt = _log_softmax_blocks(s_row, t_row, start, V, inv_t, ms, log_ss, mt, log_st,
                                                           ACC, BLOCK)
                s = tl.exp(ls)
                if DIVERGENCE == 1:
                    g = _masked(s, _log_ratio(ls, lt)) - _masked(s, value)
                else:
                    lm = _log_mixture(lt, ls, log_beta, log_1mbeta)
                    g = (1.0 - beta) * _masked(s, _log_ratio(ls, lm)) - _masked(s, g_sum)
                tl.store(g_row + offs, tl.where(keep, g * scale, 0.0).to(G.dtype.element_ty), mask=inside)
