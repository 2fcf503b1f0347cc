"""The autograd Functions: forward and an analytic backward for each loss, running the rules layer's row math
(``crossentropy.rules.rows`` / ``rules.elementwise``) on tensors.

Everything is computed in float32 for half and bfloat16 inputs (float64 stays float64), including the true-class
term ``o p_y - a_y``, and cast to the input dtype only at the end. Nothing here reads a tensor value on the host.
When backward is itself differentiated (``create_graph=True``), it runs the same math without in-place updates
(``TORCH_GRAPH``), so double backward works.
"""

from __future__ import annotations

import torch

from ..kernels.triton import rows as triton_rows
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


def row_coefficients(xp, x, target, weight, sample_weight, options, normalize: bool):
    """The rules' coefficients of rows ``x`` in their compute dtype, with a weight that overflows it refused."""
    dtype = compute_dtype(x.dtype)
    coef = coefficients(xp, target, x.shape[-1], options, w=weight, s=sample_weight, dtype=dtype,
                        normalize=normalize)
    if not normalize:
        check_weights_fit(xp, coef.o, torch.finfo(dtype).max, str(dtype).removeprefix("torch."),
                          "weight" if sample_weight is None else "weight and sample_weight")
    return coef


class CrossEntropyFunction(torch.autograd.Function):
    """Cross-entropy of rows ``x (n, C)``; returns ``(loss, lse)``, and with ``stats`` also the per-row entropy,
    target probability and argmax of the same pass (``options.return_stats``). Backward recomputes softmax from
    ``x``. ``options`` is a checked ``SoftmaxOptions``."""

    @staticmethod
    def forward(ctx, x, target, weight, sample_weight, total_weight, options):
        normalize = options.normalize(total_weight)
        cdt = compute_dtype(x.dtype)
        coef = row_coefficients(TORCH, x, target, weight, sample_weight, options, normalize)
        stats = options.return_stats
        kernel = _cpu.softmax_kernel(options, x)  # the dispatch point
        if kernel == "compiled":  # zero-copy
            r = _cpu.softmax_rows(x, coef, options, dtype=cdt, stats=stats)
        elif kernel == "triton":
            r = triton_rows.softmax_rows(x, coef, z_loss=options.z_loss, softcap=options.softcap, dtype=cdt,
                                         stats=stats)
        else:
            r = softmax_rows(TORCH, x.to(cdt), coef, z_loss=options.z_loss, softcap=options.softcap, stats=stats)
        extra = (r.lse, r.entropy, r.p_target, r.predicted) if stats else (r.lse,)
        scale = reduction_scale(TORCH, options.reduction, TORCH.total(coef.o), total_weight)
        ctx.save_for_backward(x, target, weight, sample_weight, scale)
        ctx.options, ctx.normalize, ctx.kernel = options, normalize, kernel
        ctx.coef = coef  # O(rows), reused by a first-order backward
        ctx.mark_non_differentiable(*extra)
        return (reduce(TORCH, r.loss, options.reduction, scale), *extra)

    @staticmethod
    def backward(ctx, grad_loss, *_grad_stats):
        x, target, weight, sample_weight, scale = ctx.saved_tensors
        options = ctx.options
        xp = namespace_for_backward()
        cdt = compute_dtype(x.dtype)
        coef = ctx.coef if xp is TORCH else row_coefficients(xp, x, target, weight, sample_weight, options,
                                                             ctx.normalize)
        r_scale = row_scale(grad_loss, scale, x.shape[0], cdt)
        if xp is TORCH and ctx.kernel == "compiled":  # the gradient written once, in x's dtype
            return _cpu.softmax_rows(x, coef, options, dtype=cdt, row_scale=r_scale).grad, *(None,) * 5
        if xp is TORCH and ctx.kernel == "triton":  # the gradient written once by the kernel, in x's dtype
            r = triton_rows.softmax_rows(x, coef, z_loss=options.z_loss, softcap=options.softcap, dtype=cdt,
                                         row_scale=r_scale)
            return r.grad, *(None,) * 5
        r = softmax_rows(xp, x.to(cdt), coef, z_loss=options.z_loss, softcap=options.softcap, row_scale=r_scale)
        return r.grad.to(x.dtype), *(None,) * 5


class SoftmaxFocalFunction(torch.autograd.Function):
    """Softmax focal loss of rows (``rules.rows.focal_rows``); ``alpha`` enters as class weights; ``options`` is a
    checked ``FocalOptions``."""

    @staticmethod
    def forward(ctx, x, target, alpha, sample_weight, total_weight, options):
        normalize = options.normalize(total_weight)
        coef = row_coefficients(TORCH, x, target, alpha, sample_weight, options, normalize)
        r = focal_rows(TORCH, x.to(compute_dtype(x.dtype)), coef, gamma=options.gamma)
        scale = reduction_scale(TORCH, options.reduction, TORCH.total(coef.o), total_weight)
        ctx.save_for_backward(x, target, alpha, sample_weight, scale)
        ctx.options, ctx.normalize = options, normalize
        return reduce(TORCH, r.loss, options.reduction, scale)

    @staticmethod
    def backward(ctx, grad_loss):
        x, target, alpha, sample_weight, scale = ctx.saved_tensors
        xp = namespace_for_backward()
        cdt = compute_dtype(x.dtype)
        coef = row_coefficients(xp, x, target, alpha, sample_weight, ctx.options, ctx.normalize)
        r = focal_rows(xp, x.to(cdt), coef, gamma=ctx.options.gamma,
                       row_scale=row_scale(grad_loss, scale, x.shape[0], cdt))
        return r.grad.to(x.dtype), *(None,) * 5


def _formula(name: str, xp, x, t, coefficient, gamma, grad: bool = False):
    """The element-wise formula ``name`` of ``rules.elementwise`` (``gamma`` is the sigmoid focal loss's)."""
    if name == "sigmoid_focal":
        return sigmoid_focal(xp, x, t, coefficient, gamma=gamma, grad=grad)
    return {"bce_with_logits": bce_with_logits, "bce_with_probs": bce_with_probs}[name](xp, x, t, coefficient,
                                                                                       grad=grad)


class ElementwiseFunction(torch.autograd.Function):
    """An element-wise loss of ``rules.elementwise`` (unreduced, unweighted), with its closed-form gradient."""

    @staticmethod
    def forward(ctx, x, t, coefficient, name, gamma):
        ctx.save_for_backward(x, t, coefficient)
        ctx.name, ctx.gamma = name, gamma
        loss, _ = _formula(name, TORCH, x.to(compute_dtype(x.dtype)), t, coefficient, gamma)
        return loss

    @staticmethod
    def backward(ctx, grad):
        x, t, coefficient = ctx.saved_tensors
        cdt = compute_dtype(x.dtype)
        _, g = _formula(ctx.name, namespace_for_backward(), x.to(cdt), t, coefficient, ctx.gamma, grad=True)
        return (g * grad.to(cdt)).to(x.dtype), None, None, None, None
