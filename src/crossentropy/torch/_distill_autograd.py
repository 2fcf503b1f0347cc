"""Kernels and autograd Functions of the distillation losses (the public functions are in ``distillation.py``).

Rows are ``(n, V)`` with the vocabulary last. The student's gradient is built in the forward pass, in float32 for
half/bfloat16 inputs (float64 for float64), and scaled by ``grad_output`` in backward; the teacher gets none.
Nothing reads a tensor value on the host: ignored rows are masked, never skipped, and "mean" divides by a count
kept on the device.
"""

from __future__ import annotations

import math

import torch


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """float16 and bfloat16 are computed in float32; float32 and float64 in themselves."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def reduction_scale(kept: torch.Tensor | None, n: int, reduction: str, like: torch.Tensor) -> torch.Tensor:
    """d(reduced)/d(sum of rows) as a device scalar: 1, or 1 / (kept rows) for "mean" (0 when none is kept)."""
    if reduction != "mean":
        return torch.ones((), dtype=like.dtype, device=like.device)
    count = torch.full((), n, dtype=like.dtype, device=like.device) if kept is None else kept.sum().to(like.dtype)
    return torch.where(count > 0, 1.0 / count.clamp_min(1), torch.zeros_like(count))


def divergence_rows(ls: torch.Tensor, lt: torch.Tensor, divergence: str, beta: float, with_grad: bool):
    """Per-row divergence of ``(log S, log T)`` rows and, with ``with_grad``, its gradient with respect to logits
    whose log-softmax is ``ls``: ``S (G - sum S G)`` (the NumPy core's ``divergence_rows``, in torch). Works in
    place on fresh temporaries; ``p log p`` terms with ``p == 0`` are 0 (NaN still propagates)."""
    grad = None
    if divergence == "forward_kl":
        t = lt.exp()
        d = (lt - ls).mul_(t).masked_fill_(t == 0, 0.0)
        values = d.sum(-1)
        if with_grad:
            grad = torch.exp(ls, out=d).sub_(t)
    elif divergence == "reverse_kl":
        s = ls.exp()
        d = (ls - lt).mul_(s).masked_fill_(s == 0, 0.0)
        values = d.sum(-1)
        if with_grad:
            grad = d.addcmul_(s, values[:, None], value=-1.0)
    else:
        s, t = ls.exp(), lt.exp()
        lm = torch.logaddexp(lt + math.log(beta), ls + math.log1p(-beta))
        s_term = (ls - lm).mul_(s).masked_fill_(s == 0, 0.0)
        t_term = torch.sub(lt, lm, out=lm).mul_(t).masked_fill_(t == 0, 0.0)
        values = beta * t_term.sum(-1) + (1 - beta) * s_term.sum(-1)
        if with_grad:
            g = s_term.mul_(1 - beta)
            grad = g.addcmul_(s, g.sum(-1, keepdim=True), value=-1.0)
    return values.clamp_min(0), grad


def masked_rows(values: torch.Tensor, grad: torch.Tensor | None, kept: torch.Tensor | None, tau: float,
                grad_scale: torch.Tensor | None = None):
    """Scale by tau**2 (values) and by ``tau * grad_scale`` (the gradient w.r.t. the unscaled logits, in place;
    ``grad_scale`` a scalar or one factor per row); zero the ignored rows."""
    values = values * tau**2
    if grad is not None:
        if grad_scale is not None and grad_scale.dim():
            grad_scale = grad_scale[:, None]
        grad.mul_(tau if grad_scale is None else grad_scale * tau)
    if kept is not None:
        values = torch.where(kept, values, values.new_zeros(()))
        if grad is not None:
            grad.masked_fill_(~kept[:, None], 0.0)
    return values, grad


def dense_rows(z_student, z_teacher, kept, options, with_grad: bool, grad_scale=None, divided: bool = False):
    """``(tau**2 * per-row divergence, its gradient w.r.t. the student's logits)`` for rows of logits (already
    divided by tau when ``divided``), the gradient times ``grad_scale`` when given."""
    divergence, beta, tau = options
    cdt = compute_dtype(z_student.dtype)
    zs, zt = z_student.to(cdt), z_teacher.to(cdt)
    ls = torch.log_softmax(zs if divided else zs / tau, -1)
    lt = torch.log_softmax(zt if divided else zt / tau, -1)
    return masked_rows(*divergence_rows(ls, lt, divergence, beta, with_grad), kept, tau, grad_scale)


def tail_log_mass(logprobs: torch.Tensor) -> torch.Tensor:
    """``log(1 - sum(exp(logprobs)))`` over the last dim (``-inf`` when it rounds to <= 0)."""
    lse = torch.logsumexp(logprobs, -1)
    tail = torch.where(lse > -math.log(2), torch.log(-torch.expm1(lse)), torch.log1p(-torch.exp(lse)))
    return torch.where(lse >= 0, torch.full_like(lse, -math.inf), tail)


def sparse_rows(z_student, indices, logprobs, kept, options, with_grad: bool):
    """The k + 1-bin divergence against top-k teacher log-probs (see ``sparse_distillation_loss``)."""
    divergence, beta, tau = options
    cdt = compute_dtype(z_student.dtype)
    ls_full = torch.log_softmax(z_student.to(cdt) / tau, -1)
    rest = ls_full.scatter(-1, indices, -math.inf)
    ls_tail = torch.logsumexp(rest, -1, keepdim=True)
    ls = torch.cat([ls_full.gather(-1, indices), ls_tail], -1)
    lp = logprobs.to(cdt)
    # with k = V the tail is empty: what rounding leaves of 1 - sum T is not mass
    lt_tail = ls_tail.new_full((lp.shape[0],), -math.inf) if indices.shape[-1] == z_student.shape[-1] \
        else tail_log_mass(lp)
    lt = torch.cat([lp, lt_tail[:, None]], -1)
    values, bins = divergence_rows(ls, lt, divergence, beta, with_grad)
    grad = None
    if with_grad:
        share = torch.exp(rest - ls_tail).masked_fill_(torch.isneginf(rest), 0.0)
        grad = share.mul_(bins[:, -1:]).scatter_(-1, indices, bins[:, :-1])
    return masked_rows(values, grad, kept, tau)


def _finish(ctx, values: torch.Tensor, grad, kept, reduction: str):
    """Reduce the rows; keep the gradient of the reduced loss for backward."""
    scale = reduction_scale(kept, values.shape[0], reduction, values)
    ctx.reduction = reduction
    ctx.save_for_backward(None if grad is None else grad if reduction == "none" else grad * scale)
    return values if reduction == "none" else values.sum() * scale


class RowsDistillationFunction(torch.autograd.Function):
    """Dense (``teacher`` logits) or sparse (``teacher`` = (indices, log-probs)) distillation over rows."""

    @staticmethod
    def forward(ctx, z_student, teacher, indices, kept, options, reduction, with_grad):
        ctx.dtype = z_student.dtype
        if indices is None:
            values, grad = dense_rows(z_student, teacher, kept, options, with_grad)
        else:
            values, grad = sparse_rows(z_student, indices, teacher, kept, options, with_grad)
        return _finish(ctx, values, grad, kept, reduction)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out):
        (grad,) = ctx.saved_tensors
        if grad is None:
            return (None,) * 7
        g = grad * (grad_out.to(grad.dtype)[:, None] if ctx.reduction == "none" else grad_out.to(grad.dtype))
        return (g.to(ctx.dtype),) + (None,) * 6


def _logits(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    return x @ weight.T if bias is None else torch.addmm(bias, x, weight.T)


def linear_pass(student, teacher, kept, options, chunk_size: int, loss_rows=None, grads=None, row_scale=None):
    """One pass over the rows a chunk at a time: the per-row losses into ``loss_rows`` and/or the gradients of
    ``sum_i row_scale_i l_i`` accumulated into ``grads = (grad_x, grad_w, grad_b)`` of the student's linear layer."""
    (xs, ws, bs), (xt, wt, bt) = student, teacher
    inv = 1.0 / options[2]  # divide the (N, D) inputs and the bias by tau, not the (N, V) logits
    bs, bt = (None if b is None else b * inv for b in (bs, bt))
    for start in range(0, xs.shape[0], chunk_size):
        rows = slice(start, start + chunk_size)
        chunk_kept = None if kept is None else kept[rows]
        scale = None if grads is None else row_scale if row_scale.dim() == 0 else row_scale[rows]
        with torch.no_grad():
            values, g = dense_rows(_logits(xs[rows] * inv, ws, bs), _logits(xt[rows] * inv, wt, bt), chunk_kept,
                                   options, grads is not None, scale, divided=True)
        if loss_rows is not None:
            loss_rows[rows] = values
        if grads is not None:
            grad_x, grad_w, grad_b = grads
            grad_x[rows] = (g.to(ws.dtype) @ ws).to(grad_x.dtype)
            grad_w.addmm_(g.T, xs[rows].to(g.dtype))
            if grad_b is not None:
                grad_b += g.sum(0)


def _zero_grads(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None):
    cdt = compute_dtype(x.dtype)
    return (x.new_zeros(x.shape, dtype=cdt), weight.new_zeros(weight.shape, dtype=cdt),
            None if bias is None else bias.new_zeros(bias.shape, dtype=cdt))


class LinearDistillationFunction(torch.autograd.Function):
    """Distillation of two linear heads' logits, a chunk of rows at a time. For "mean"/"sum" the student's
    gradients are accumulated in forward and scaled by ``grad_output`` in backward (which may then run once);
    for "none" backward recomputes each chunk."""

    @staticmethod
    def forward(ctx, xs, ws, bs, xt, wt, bt, kept, options, reduction, chunk_size, with_grad):
        cdt = compute_dtype(xs.dtype)
        student, teacher = (xs, ws, bs), (xt, wt, bt)
        loss_rows = xs.new_zeros(xs.shape[0], dtype=cdt)
        scale = reduction_scale(kept, xs.shape[0], reduction, loss_rows)
        grads = _zero_grads(xs, ws, bs) if with_grad and reduction != "none" else None
        linear_pass(student, teacher, kept, options, chunk_size, loss_rows, grads, scale)
        ctx.reduction, ctx.consumed, ctx.with_grad = reduction, False, with_grad
        ctx.dtypes = (xs.dtype, ws.dtype, None if bs is None else bs.dtype)
        if grads is not None:
            ctx.save_for_backward(*grads)
        else:
            ctx.save_for_backward(xs, ws, bs, xt, wt, bt, kept)
            ctx.options, ctx.chunk_size = options, chunk_size
        return loss_rows if reduction == "none" else loss_rows.sum() * scale

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out):
        if not ctx.with_grad:  # only the teacher's tensors required grad: they get none
            return (None,) * 11
        if ctx.reduction != "none":
            if ctx.consumed:
                raise RuntimeError("linear_distillation_loss computes its 'mean'/'sum' gradients in forward and "
                                   "scales them in place, so backward can run once; recompute the loss to "
                                   "differentiate it again, or use reduction='none'.")
            ctx.consumed = True
            g = grad_out.to(ctx.saved_tensors[0].dtype)
            grads = tuple(None if t is None else t.mul_(g) for t in ctx.saved_tensors)
        else:
            xs, ws, bs, xt, wt, bt, kept = ctx.saved_tensors
            grads = _zero_grads(xs, ws, bs)
            linear_pass((xs, ws, bs), (xt, wt, bt), kept, ctx.options, ctx.chunk_size, grads=grads,
                        row_scale=grad_out.to(grads[0].dtype))
        return tuple(None if g is None else g.to(dtype) for g, dtype in zip(grads, ctx.dtypes, strict=True)) + \
            (None,) * 8
