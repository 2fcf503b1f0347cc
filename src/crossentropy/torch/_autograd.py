"""torch.autograd.Function classes with analytic backwards, and the row math they share with linear.py and
parallel.py.

Rows are ``(n, C)`` logits with the class axis last. Per row ``i`` the targets are described by coefficients
``a_ic = w_c t'_ic`` (zero for ignored rows) and their total ``o_i`` (DESIGN.md semantics 4). With
``s = z - max(z)`` and ``log_s = log(sum(exp(s)))``::

    l_i = sum_c a_ic (log_s_i - s_ic) + z_loss * o_i * lse_i**2
    d l_i / d z_i = o_i (1 + 2 z_loss lse_i) softmax(z_i) - a_i

Everything is computed in float32 for half and bfloat16 inputs (float64 stays float64), including the true-class
term ``o p_y - a_y``, and cast to the input dtype only at the end. Nothing here reads a tensor value on the host.
"""

from __future__ import annotations

from typing import NamedTuple

import torch


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


class Coefficients(NamedTuple):
    """``a = a_y * onehot(y) + u * w`` (index targets) or ``a = dense`` (probability targets); ``o = a.sum(-1)``."""

    o: torch.Tensor
    y: torch.Tensor | None = None
    a_y: torch.Tensor | None = None
    u: torch.Tensor | None = None
    w: torch.Tensor | None = None
    dense: torch.Tensor | None = None


def coefficients(target: torch.Tensor, n_classes: int, weight: torch.Tensor | None, ignore_index: int,
                 smoothing: float, dtype: torch.dtype) -> Coefficients:
    """Coefficients for index targets ``(n,)`` or probability targets ``(n, C)``."""
    w = None if weight is None else weight.to(dtype)
    if target.is_floating_point():
        dense = target.to(dtype)
        if smoothing:
            dense = (1 - smoothing) * dense + smoothing / n_classes
        if w is not None:
            dense = dense * w
        return Coefficients(o=dense.sum(-1), dense=dense)
    keep = target != ignore_index
    y = torch.where(keep, target, torch.zeros_like(target))
    keep_f = keep.to(dtype)
    a_y = keep_f * (1 - smoothing)
    if w is not None:
        a_y = a_y * w[y]
    u = keep_f * (smoothing / n_classes) if smoothing else None
    o = a_y if u is None else a_y + u * (w.sum() if w is not None else n_classes)
    return Coefficients(o=o, y=y, a_y=a_y, u=u, w=w)


def shifted_logits(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(s, m, nan_rows)``: ``s = z - max(z)`` row-wise (a new tensor), ``m`` the max, ``nan_rows`` NaN where a row
    holds NaN and 0 elsewhere (add it to per-row results to propagate NaN).

    A row with an infinite max gets the limit pattern of the NumPy core: 0 at the max and -inf elsewhere (``inf -
    inf`` is NaN, which becomes 0 in one in-place pass; NaN rows are restored through ``nan_rows``).
    """
    m = z.amax(-1)
    s = (z - m[:, None]).nan_to_num_(nan=0.0, posinf=float("inf"), neginf=float("-inf"))
    return s, m, torch.where(torch.isnan(m), m, torch.zeros_like(m))


def _masked(a: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``a * x`` with ``0 * x = 0`` where ``x`` is infinite."""
    return torch.where(a == 0, torch.zeros_like(x), a * x)


def linear_term(s: torch.Tensor, coef: Coefficients) -> torch.Tensor:
    """``sum_c a_ic s_ic`` per row."""
    if coef.dense is not None:
        return _masked(coef.dense, s).sum(-1)
    out = _masked(coef.a_y, s.gather(1, coef.y[:, None]).squeeze(1))
    if coef.u is not None:
        sw = s @ coef.w if coef.w is not None else s.sum(-1)
        out = out + _masked(coef.u, sw)
    return out


def row_loss(log_s: torch.Tensor, lse: torch.Tensor, linear: torch.Tensor, coef: Coefficients,
             z_loss: float) -> torch.Tensor:
    loss = _masked(coef.o, log_s) - linear
    if z_loss:
        loss = loss + _masked(coef.o, z_loss * lse * lse)
    return loss


def row_grad_(e: torch.Tensor, total: torch.Tensor, lse: torch.Tensor, coef: Coefficients, z_loss: float,
              row_scale: torch.Tensor) -> torch.Tensor:
    """Turn ``e = exp(s)`` in place into ``row_scale_i * (o_i (1 + 2 z_loss lse_i) softmax_i - a_i)``."""
    factor = coef.o * row_scale / total
    if z_loss:
        factor = factor * (1 + 2 * z_loss * lse)
    g = e.mul_(factor[:, None])
    if coef.dense is not None:
        return g.sub_(coef.dense * row_scale[:, None])
    g.scatter_add_(1, coef.y[:, None], -(coef.a_y * row_scale)[:, None])
    if coef.u is not None:
        uniform = (coef.u * row_scale)[:, None]
        g.sub_(uniform * coef.w if coef.w is not None else uniform)
    return g


def reduction_scale(o_total: torch.Tensor, reduction: str) -> torch.Tensor:
    """1 for "none"/"sum"; ``1 / sum(o)`` for "mean", and 0 when nothing is weighted (no host sync)."""
    if reduction != "mean":
        return torch.ones_like(o_total)
    safe = torch.where(o_total > 0, o_total, torch.ones_like(o_total))
    return torch.where(o_total > 0, 1 / safe, torch.zeros_like(o_total))


def reduce_rows(loss_rows: torch.Tensor, scale: torch.Tensor, reduction: str) -> torch.Tensor:
    return loss_rows if reduction == "none" else loss_rows.sum() * scale


def capped(x: torch.Tensor, softcap: float | None) -> torch.Tensor:
    return x if softcap is None else softcap * torch.tanh(x / softcap)


def softcap_chain(g: torch.Tensor, zc: torch.Tensor, softcap: float | None) -> torch.Tensor:
    """d/dx of ``c tanh(x / c)`` is ``1 - (z / c)**2`` with ``z`` the capped logit."""
    return g if softcap is None else g.mul_(1 - (zc / softcap) ** 2)


def forward_rows(x: torch.Tensor, coef: Coefficients, z_loss: float, softcap: float | None,
                 row_scale: torch.Tensor | None = None):
    """Rows ``x`` (any float dtype) -> ``(loss, lse, grad)``, computed in float32/64. ``grad`` is the gradient of
    ``sum_i row_scale_i l_i`` with respect to ``x`` when ``row_scale`` is given, else None. One full-size
    tensor is allocated; every later pass works on it in place."""
    z = capped(x.to(compute_dtype(x.dtype)), softcap)
    s, m, nan_rows = shifted_logits(z)
    linear = linear_term(s, coef)
    e = s.exp_()
    total = e.sum(-1)
    log_s = torch.log(total)
    lse = m + log_s
    loss = row_loss(log_s, lse, linear, coef, z_loss) + nan_rows
    if row_scale is None:
        return loss, lse, None
    g = row_grad_(e, total, lse, coef, z_loss, row_scale + nan_rows)
    return loss, lse, softcap_chain(g, z, softcap)


def as_rows(scale: torch.Tensor, n: int) -> torch.Tensor:
    """A scalar or per-row scale as an ``(n,)`` tensor."""
    return scale.expand(n) if scale.dim() == 0 else scale


class CrossEntropyFunction(torch.autograd.Function):
    """Cross-entropy of rows ``x (n, C)``; returns ``(loss, lse)``. Backward recomputes softmax from ``x``."""

    @staticmethod
    def forward(ctx, x, target, weight, ignore_index, smoothing, reduction, z_loss, softcap):
        coef = coefficients(target, x.shape[-1], weight, ignore_index, smoothing, compute_dtype(x.dtype))
        loss_rows, lse, _ = forward_rows(x, coef, z_loss, softcap)
        scale = reduction_scale(coef.o.sum(), reduction)
        ctx.save_for_backward(x, target, weight, scale)
        ctx.options = (ignore_index, smoothing, z_loss, softcap)
        ctx.mark_non_differentiable(lse)
        return reduce_rows(loss_rows, scale, reduction), lse

    @staticmethod
    def backward(ctx, grad_loss, _grad_lse):
        x, target, weight, scale = ctx.saved_tensors
        ignore_index, smoothing, z_loss, softcap = ctx.options
        cdt = compute_dtype(x.dtype)
        coef = coefficients(target, x.shape[-1], weight, ignore_index, smoothing, cdt)
        row_scale = as_rows(grad_loss.to(cdt) * scale, x.shape[0])
        _, _, g = forward_rows(x, coef, z_loss, softcap, row_scale)
        return g.to(x.dtype), None, None, None, None, None, None, None


class SoftmaxFocalFunction(torch.autograd.Function):
    """Softmax focal loss of rows; ``alpha`` enters as class weights. See the NumPy core for the gradient."""

    @staticmethod
    def forward(ctx, x, target, alpha, ignore_index, smoothing, reduction, gamma):
        cdt = compute_dtype(x.dtype)
        coef = coefficients(target, x.shape[-1], alpha, ignore_index, smoothing, cdt)
        a = _dense(coef, x.shape[-1], cdt)
        s, _, nan_rows = shifted_logits(x.to(cdt))
        logp = s - torch.logsumexp(s, -1, keepdim=True)
        q = -torch.expm1(logp)
        loss_rows = _masked(a, q.pow(gamma) * -logp).sum(-1) + nan_rows
        scale = reduction_scale(coef.o.sum(), reduction)
        ctx.save_for_backward(x, target, alpha, scale)
        ctx.options = (ignore_index, smoothing, reduction, gamma)
        return reduce_rows(loss_rows, scale, reduction)

    @staticmethod
    def backward(ctx, grad_loss):
        x, target, alpha, scale = ctx.saved_tensors
        ignore_index, smoothing, reduction, gamma = ctx.options
        cdt = compute_dtype(x.dtype)
        a = _dense(coefficients(target, x.shape[-1], alpha, ignore_index, smoothing, cdt), x.shape[-1], cdt)
        s, _, nan_rows = shifted_logits(x.to(cdt))
        logp = s - torch.logsumexp(s, -1, keepdim=True)
        p, q = torch.exp(logp), -torch.expm1(logp)
        ratio = torch.where(q > 0, logp / torch.where(q > 0, q, torch.ones_like(q)), -torch.ones_like(q))
        p_ratio = torch.where(p == 0, torch.zeros_like(p), p * ratio)
        ag = _masked(a, q.pow(gamma) * (gamma * p_ratio - 1))
        g = ag - p * ag.sum(-1, keepdim=True)
        g = g * (as_rows(grad_loss.to(cdt) * scale, x.shape[0]) + nan_rows)[:, None]
        return g.to(x.dtype), None, None, None, None, None, None


def _dense(coef: Coefficients, n_classes: int, dtype: torch.dtype) -> torch.Tensor:
    if coef.dense is not None:
        return coef.dense
    a = torch.zeros(coef.y.shape[0], n_classes, dtype=dtype, device=coef.y.device)
    if coef.u is not None:
        a = a + coef.u[:, None] * (coef.w if coef.w is not None else 1.0)
    return a.scatter_add(1, coef.y[:, None], coef.a_y[:, None])


class SigmoidFocalFunction(torch.autograd.Function):
    """Element-wise sigmoid focal loss (torchvision's formula) with the saturation-safe analytic gradient.

    Returns the unreduced, unweighted loss; the caller applies alpha-free weights and the reduction.
    """

    @staticmethod
    def _terms(x, t):
        """``(ce, p, q, m)``: the BCE, ``sigmoid(x)``, ``1 - p`` computed as ``sigmoid(-x)``, and ``1 - p_t``."""
        xc = x.to(compute_dtype(x.dtype))
        ce = _masked(t, torch.nn.functional.softplus(-xc)) + _masked(1 - t, torch.nn.functional.softplus(xc))
        p, q = torch.sigmoid(xc), torch.sigmoid(-xc)
        return ce, p, q, p * (1 - t) + q * t

    @staticmethod
    def forward(ctx, x, t, alpha_t, gamma):
        ce, _, _, m = SigmoidFocalFunction._terms(x, t)
        ctx.save_for_backward(x, t, alpha_t)
        ctx.gamma = gamma
        return alpha_t * ce * m.pow(gamma)

    @staticmethod
    def backward(ctx, grad):
        x, t, alpha_t = ctx.saved_tensors
        gamma = ctx.gamma
        cdt = compute_dtype(x.dtype)
        ce, p, q, m = SigmoidFocalFunction._terms(x, t)
        m_safe = torch.where(m > 0, m, torch.ones_like(m))
        bend = torch.where(m > 0, p * q * m_safe.pow(gamma - 1), torch.zeros_like(m))
        g = alpha_t * (((1 - t) * p - t * q) * m.pow(gamma) + _masked(gamma * (1 - 2 * t) * bend, ce))
        return (g * grad.to(cdt)).to(x.dtype), None, None, None
