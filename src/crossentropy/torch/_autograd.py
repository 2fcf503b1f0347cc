"""The autograd Functions: forward and an analytic backward for each loss, running the rules layer's row math
(``crossentropy.rules.rows`` / ``rules.elementwise``) on tensors.

Everything is computed in float32 for half and bfloat16 inputs (float64 stays float64), including the true-class
term ``o p_y - a_y``, and cast to the input dtype only at the end. Nothing here reads a tensor value on the host.
When backward is itself differentiated (``create_graph=True``), it runs the same math without in-place updates
(``TORCH_GRAPH``), so double backward works.
"""

from __future__ import annotations

import torch

from ..rules.elementwise import bce_with_logits, bce_with_probs, sigmoid_focal
from ..rules.options import check_weights_fit
from ..rules.reduction import reduce, reduction_scale
from ..rules.rows import focal_rows, softmax_rows
from ..rules.targets import coefficients
from . import _cpu
from ._inputs import compute_dtype
from ._xp import TORCH, namespace_for_backward


def row_scale(grad_out: torch.Tensor, scale: torch.Tensor, n: int, dtype: torch.dtype) -> torch.Tensor:
    """``grad_out * scale`` as an ``(n,)`` tensor in ``dtype`` (``grad_out`` is a scalar or per row)."""
    r = (grad_out.to(torch.float64) * scale).to(dtype)
    return r.expand(n) if r.dim() == 0 else r


def _coefficients(xp, x, target, weight, sample_weight, ignore_index, smoothing, normalize):
    dtype = compute_dtype(x.dtype)
    coef = coefficients(xp, target, x.shape[-1], w=weight, s=sample_weight, ignore_index=ignore_index,
                        smoothing=smoothing, dtype=dtype, normalize=normalize)
    if not normalize:
        check_weights_fit(xp, coef.o, torch.finfo(dtype).max, str(dtype).removeprefix("torch."),
                          "weight" if sample_weight is None else "weight and sample_weight")
    return coef


class CrossEntropyFunction(torch.autograd.Function):
    """Cross-entropy of rows ``x (n, C)``; returns ``(loss, lse)``, and with ``stats`` also the per-row entropy,
    target probability and argmax of the same pass. Backward recomputes softmax from ``x``."""

    @staticmethod
    def forward(ctx, x, target, weight, sample_weight, total_weight, ignore_index, smoothing, reduction, z_loss,
                softcap, stats=False):
        normalize = reduction == "mean" and total_weight is None
        cdt = compute_dtype(x.dtype)
        coef = _coefficients(TORCH, x, target, weight, sample_weight, ignore_index, smoothing, normalize)
        if _cpu.usable(x):  # the compiled kernel, zero-copy
            r = _cpu.softmax_rows(x, coef, z_loss=z_loss, softcap=softcap, dtype=cdt, stats=stats)
        else:
            r = softmax_rows(TORCH, x.to(cdt), coef, z_loss=z_loss, softcap=softcap, stats=stats)
        extra = (r.lse, r.entropy, r.p_target, r.predicted) if stats else (r.lse,)
        scale = reduction_scale(TORCH, reduction, TORCH.total(coef.o), total_weight)
        ctx.save_for_backward(x, target, weight, sample_weight, scale)
        ctx.options = (ignore_index, smoothing, z_loss, softcap, normalize)
        ctx.coef = coef  # O(rows), reused by a first-order backward
        ctx.mark_non_differentiable(*extra)
        return (reduce(TORCH, r.loss, reduction, scale), *extra)

    @staticmethod
    def backward(ctx, grad_loss, *_grad_stats):
        x, target, weight, sample_weight, scale = ctx.saved_tensors
        ignore_index, smoothing, z_loss, softcap, normalize = ctx.options
        xp = namespace_for_backward()
        cdt = compute_dtype(x.dtype)
        coef = ctx.coef if xp is TORCH else _coefficients(xp, x, target, weight, sample_weight, ignore_index,
                                                          smoothing, normalize)
        r_scale = row_scale(grad_loss, scale, x.shape[0], cdt)
        if xp is TORCH and _cpu.usable(x):  # the gradient written once, in x's dtype
            return (_cpu.softmax_rows(x, coef, z_loss=z_loss, softcap=softcap, dtype=cdt, row_scale=r_scale).grad,
                    *(None,) * 10)
        r = softmax_rows(xp, x.to(cdt), coef, z_loss=z_loss, softcap=softcap, row_scale=r_scale)
        return (r.grad.to(x.dtype), *(None,) * 10)


class SoftmaxFocalFunction(torch.autograd.Function):
    """Softmax focal loss of rows (``rules.rows.focal_rows``); ``alpha`` enters as class weights."""

    @staticmethod
    def forward(ctx, x, target, alpha, sample_weight, total_weight, ignore_index, smoothing, reduction, gamma):
        normalize = reduction == "mean" and total_weight is None
        coef = _coefficients(TORCH, x, target, alpha, sample_weight, ignore_index, smoothing, normalize)
        r = focal_rows(TORCH, x.to(compute_dtype(x.dtype)), coef, gamma=gamma)
        scale = reduction_scale(TORCH, reduction, TORCH.total(coef.o), total_weight)
        ctx.save_for_backward(x, target, alpha, sample_weight, scale)
        ctx.options = (ignore_index, smoothing, gamma, normalize)
        return reduce(TORCH, r.loss, reduction, scale)

    @staticmethod
    def backward(ctx, grad_loss):
        x, target, alpha, sample_weight, scale = ctx.saved_tensors
        ignore_index, smoothing, gamma, normalize = ctx.options
        xp = namespace_for_backward()
        cdt = compute_dtype(x.dtype)
        coef = _coefficients(xp, x, target, alpha, sample_weight, ignore_index, smoothing, normalize)
        r = focal_rows(xp, x.to(cdt), coef, gamma=gamma, row_scale=row_scale(grad_loss, scale, x.shape[0], cdt))
        return (r.grad.to(x.dtype), *(None,) * 8)


_ELEMENTWISE = {"bce_with_logits": bce_with_logits, "bce_with_probs": bce_with_probs, "sigmoid_focal": sigmoid_focal}


class ElementwiseFunction(torch.autograd.Function):
    """An element-wise loss of ``rules.elementwise`` (unreduced, unweighted), with its closed-form gradient."""

    @staticmethod
    def forward(ctx, x, t, coefficient, name, options):
        ctx.save_for_backward(x, t, coefficient)
        ctx.formula = (name, options)
        loss, _ = _ELEMENTWISE[name](TORCH, x.to(compute_dtype(x.dtype)), t, coefficient, **options)
        return loss

    @staticmethod
    def backward(ctx, grad):
        x, t, coefficient = ctx.saved_tensors
        name, options = ctx.formula
        cdt = compute_dtype(x.dtype)
        _, g = _ELEMENTWISE[name](namespace_for_backward(), x.to(cdt), t, coefficient, grad=True, **options)
        return (g * grad.to(cdt)).to(x.dtype), None, None, None, None
