"""Kernels and autograd Functions of the distillation losses (the public functions are in ``distillation.py``).

Rows are ``(n, V)`` with the vocabulary last. The student's gradient is built in the forward pass, in float32 for
half/bfloat16 inputs (float64 for float64), and scaled by ``grad_output`` in backward; the teacher gets none.
The row math (divergences, the sparse k + 1 bins, ``temperature`` factors, ignored rows) is the rules layer's
(``crossentropy.rules.divergence``), shared with the NumPy core; "mean" is ``rules.reduction``'s over the kept rows.
Nothing reads a tensor value on the host: ignored rows are masked, never skipped, and "mean" divides by a count
kept on the device.
"""

from __future__ import annotations

import torch

from ..kernels.triton import rows as triton_rows
from ..rules.divergence import dense_rows, kept_total, sparse_rows
from ..rules.limits import masked_product
from ..rules.reduction import reduce, reduction_scale
from ._inputs import compute_dtype
from ._xp import TORCH


def _scale(kept, sample_weight, like: torch.Tensor, reduction: str) -> torch.Tensor:
    """d(reduced)/d(sum of rows) on the device: ``rules.reduction.reduction_scale`` over the kept rows, each
    weighing its sample weight (1 without)."""
    if sample_weight is None:
        return reduction_scale(TORCH, reduction, kept_total(TORCH, kept, like))
    kept_weight = sample_weight if kept is None else torch.where(kept, sample_weight, 0.0)
    return reduction_scale(TORCH, reduction, TORCH.total(kept_weight))


def _row_scale(scale: torch.Tensor, sample_weight, dtype) -> torch.Tensor:
    """The gradient's factor per row: ``scale`` (a scalar, or one per row) times the sample weights."""
    return scale.to(dtype) if sample_weight is None else scale.to(dtype) * sample_weight.to(dtype)


def _weighted(values: torch.Tensor, sample_weight) -> torch.Tensor:
    """``s_i l_i`` with ``0 * l = 0`` (an ignored or zero-weight row costs nothing)."""
    return values if sample_weight is None else masked_product(TORCH, sample_weight.to(values.dtype), values)


def _reduced(values: torch.Tensor, reduction: str, scale: torch.Tensor) -> torch.Tensor:
    return reduce(TORCH, values, reduction, scale).to(values.dtype)


class RowsDistillationFunction(torch.autograd.Function):
    """Dense (``teacher`` logits) or sparse (``teacher`` = (indices, log-probs)) distillation over rows."""

    @staticmethod
    def forward(ctx, z_student, teacher, indices, kept, sample_weight, options, with_grad):
        reduction = options.reduction
        ctx.dtype, ctx.reduction = z_student.dtype, reduction
        cdt = compute_dtype(z_student.dtype)
        zs = z_student.to(cdt)
        scale = _scale(kept, sample_weight, zs, reduction)
        rows = _row_scale(scale, sample_weight, cdt)
        if options.impl == "triton":  # one kernel launch; the gradient in the compute dtype, as the reference's
            values, grad = triton_dense(z_student, teacher, options, kept, rows, with_grad=with_grad)
        elif indices is None:
            values, grad = dense_rows(TORCH, zs, teacher.to(cdt), options, kept, rows, with_grad=with_grad)
        else:
            values, grad = sparse_rows(TORCH, zs, indices, teacher.to(cdt), options, kept, rows, with_grad=with_grad)
        ctx.save_for_backward(grad)  # the gradient of the reduced loss, up to grad_output
        return _reduced(_weighted(values, sample_weight), reduction, scale)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out):
        (grad,) = ctx.saved_tensors
        if grad is None:
            return (None,) * 7
        g = grad * (grad_out.to(grad.dtype)[:, None] if ctx.reduction == "none" else grad_out.to(grad.dtype))
        return (g.to(ctx.dtype),) + (None,) * 6


def triton_dense(z_student, z_teacher, options, kept, row_scale, *, with_grad: bool):
    """``rules.divergence.dense_rows`` on the Triton kernel (``kernels.triton.rows.distill_rows``) for the raw
    logits: values and gradient in the compute dtype."""
    cdt = compute_dtype(z_student.dtype)
    out = torch.empty(z_student.shape, dtype=cdt, device=z_student.device) if with_grad else None
    values, grad = triton_rows.distill_rows(z_student, z_teacher, divergence=options.divergence, beta=options.beta,
                                            temperature=options.temperature, kept=kept, row_scale=row_scale,
                                            with_grad=with_grad, out=out)
    return values.to(cdt), grad


def _logits(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    return x @ weight.T if bias is None else torch.addmm(bias, x, weight.T)


def linear_pass(student, teacher, kept, options, loss_rows=None, grads=None, row_scale=None):
    """One pass over the rows, a chunk of ``options.chunk_size`` at a time: the per-row losses into ``loss_rows``
    and/or the gradients of ``sum_i row_scale_i l_i`` accumulated into ``grads = (grad_x, grad_w, grad_b)`` of the
    student's linear layer."""
    (xs, ws, bs), (xt, wt, bt) = student, teacher
    triton = options.impl == "triton"  # the kernel divides the logits by temperature itself
    inv = 1.0 if triton else 1.0 / options.temperature  # else divide the (N, D) inputs and the bias, not the logits
    bs, bt = (None if b is None else b * inv for b in (bs, bt))
    chunk_size = options.chunk_size
    for start in range(0, xs.shape[0], chunk_size):
        rows = slice(start, start + chunk_size)
        chunk_kept = None if kept is None else kept[rows]
        scale = None if grads is None else row_scale if row_scale.dim() == 0 else row_scale[rows]
        with torch.no_grad():
            zs, zt = _logits(xs[rows] * inv, ws, bs), _logits(xt[rows] * inv, wt, bt)
            cdt = compute_dtype(zs.dtype)
            if triton:
                values, g = triton_dense(zs, zt, options, chunk_kept, scale, with_grad=grads is not None)
            else:
                values, g = dense_rows(TORCH, zs.to(cdt), zt.to(cdt), options, chunk_kept, scale,
                                       with_grad=grads is not None, divided=True)
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
    def forward(ctx, xs, ws, bs, xt, wt, bt, kept, sample_weight, options, with_grad):
        reduction = options.reduction
        cdt = compute_dtype(xs.dtype)
        student, teacher = (xs, ws, bs), (xt, wt, bt)
        loss_rows = xs.new_zeros(xs.shape[0], dtype=cdt)
        scale = _scale(kept, sample_weight, loss_rows, reduction)
        grads = _zero_grads(xs, ws, bs) if with_grad and reduction != "none" else None
        linear_pass(student, teacher, kept, options, loss_rows, grads, _row_scale(scale, sample_weight, cdt))
        ctx.reduction, ctx.consumed, ctx.with_grad = reduction, False, with_grad
        ctx.dtypes = (xs.dtype, ws.dtype, None if bs is None else bs.dtype)
        if grads is not None:
            ctx.save_for_backward(*grads)
        else:
            ctx.save_for_backward(xs, ws, bs, xt, wt, bt, kept, sample_weight)
            ctx.options = options
        return _reduced(_weighted(loss_rows, sample_weight), reduction, scale)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out):
        if not ctx.with_grad:  # only the teacher's tensors required grad: they get none
            return (None,) * 10
        if ctx.reduction != "none":
            if ctx.consumed:
                raise RuntimeError("linear_distillation_loss computes its 'mean'/'sum' gradients in forward and "
                                   "scales them in place, so backward can run once; recompute the loss to "
                                   "differentiate it again, or use reduction='none'.")
            ctx.consumed = True
            g = grad_out.to(ctx.saved_tensors[0].dtype)
            grads = tuple(None if t is None else t.mul_(g) for t in ctx.saved_tensors)
        else:
            xs, ws, bs, xt, wt, bt, kept, sample_weight = ctx.saved_tensors
            grads = _zero_grads(xs, ws, bs)
            linear_pass((xs, ws, bs), (xt, wt, bt), kept, ctx.options, grads=grads,
                        row_scale=_row_scale(grad_out, sample_weight, grads[0].dtype))
        return tuple(None if g is None else g.to(dtype) for g, dtype in zip(grads, ctx.dtypes, strict=True)) + \
            (None,) * 7
