"""Chunked linear + cross-entropy for large vocabularies: the logits ``input @ weight.T + bias`` are never held
for more than one chunk of rows at a time.

For "mean" and "sum", the gradients for ``input``, ``weight`` and ``bias`` are accumulated during the forward pass
(the reduction's scale is known from the targets alone) and scaled in place by ``grad_output`` in backward, so no
logits are recomputed and no second copy of the gradients is made; such a loss can be backpropagated once (a
second backward raises). For "none", backward recomputes each chunk's logits, so any per-token ``grad_output`` is
exact. Rows whose target is ``ignore_index`` are skipped; finding them reads the targets once on the host.
"""

from __future__ import annotations

import torch
from torch import nn

from ..rules.errors import InputValueError
from ..rules.options import check_label_smoothing, check_positive_int, check_reduction, check_softcap, check_z_loss
from ..rules.reduction import reduction_scale
from ..rules.rows import softmax_rows
from ..rules.targets import coefficients
from ._autograd import row_scale as as_row_scale
from ._inputs import check_tensor, compute_dtype, index_target_last_dim
from ._xp import TORCH

CHUNK_BYTES = 32 << 20  # the float32 logits of one chunk; two chunk-sized tensors live at once


def default_chunk_size(vocab: int, itemsize: int = 4) -> int:
    """Rows per chunk so that one chunk of logits takes about ``CHUNK_BYTES``."""
    return max(1, CHUNK_BYTES // (vocab * max(itemsize, 4)))


def _chunks(rows: torch.Tensor, chunk_size: int):
    for start in range(0, rows.shape[0], chunk_size):
        yield rows[start:start + chunk_size]


def _chunk_logits(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    return x @ weight.T if bias is None else torch.addmm(bias, x, weight.T)


def _zero_grads(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None):
    cdt = compute_dtype(x.dtype)
    return (torch.zeros(x.shape, dtype=cdt, device=x.device), torch.zeros(weight.shape, dtype=cdt, device=x.device),
            None if bias is None else torch.zeros(bias.shape, dtype=cdt, device=x.device))


def _chunk_pass(x, weight, bias, target, kept, options, loss_rows=None, grads=None, row_scale_of=None) -> None:
    """One pass over the kept rows, a chunk at a time: write per-row losses into ``loss_rows`` and/or accumulate
    the gradients of ``sum_i row_scale_i l_i`` into ``grads = (grad_x, grad_w, grad_b)``."""
    ignore_index, smoothing, z_loss, softcap, chunk_size = options
    cdt = compute_dtype(x.dtype)
    for idx in _chunks(kept, chunk_size):
        xc = x[idx]
        coef = coefficients(TORCH, target[idx], weight.shape[0], ignore_index=ignore_index, smoothing=smoothing,
                            dtype=cdt)
        row_scale = None if grads is None else row_scale_of(idx)
        logits = _chunk_logits(xc, weight, bias).to(cdt)
        loss, _, g = softmax_rows(TORCH, logits, coef, z_loss=z_loss, softcap=softcap, row_scale=row_scale,
                                  work=logits)[:3]
        if loss_rows is not None:
            loss_rows[idx] = loss
        if grads is not None:
            grad_x, grad_w, grad_b = grads
            grad_x[idx] = (g.to(weight.dtype) @ weight).to(cdt)
            grad_w.addmm_(g.T, xc.to(cdt))
            if grad_b is not None:
                grad_b += g.sum(0)


class LinearCrossEntropyFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, target, ignore_index, smoothing, reduction, z_loss, softcap, chunk_size):
        cdt = compute_dtype(x.dtype)
        options = (ignore_index, smoothing, z_loss, softcap, chunk_size)
        o = coefficients(TORCH, target, weight.shape[0], ignore_index=ignore_index, smoothing=smoothing, dtype=cdt).o
        scale = reduction_scale(TORCH, reduction, TORCH.total(o)).to(cdt)
        kept = torch.nonzero(target != ignore_index).squeeze(1)  # the one host read: skip ignored rows
        loss_rows = torch.zeros(x.shape[0], dtype=cdt, device=x.device)
        grads = _zero_grads(x, weight, bias) if reduction != "none" and any(ctx.needs_input_grad[:3]) else None
        _chunk_pass(x, weight, bias, target, kept, options, loss_rows, grads, lambda idx: scale.expand(idx.shape[0]))
        ctx.reduction, ctx.consumed = reduction, False
        ctx.dtypes = (x.dtype, weight.dtype, None if bias is None else bias.dtype)
        if grads is not None:  # "mean" / "sum": the gradients are final up to grad_output
            ctx.save_for_backward(*grads)
        else:
            ctx.save_for_backward(x, weight, bias, target, kept)
            ctx.options = options
        return loss_rows if reduction == "none" else loss_rows.sum() * scale

    @staticmethod
    def backward(ctx, grad_out):
        if ctx.reduction != "none":  # scale the gradients made in forward in place: no second copy of them
            if ctx.consumed:
                raise RuntimeError("linear_cross_entropy computes its 'mean'/'sum' gradients in forward and scales "
                                   "them in place, so backward can run once; recompute the loss to differentiate "
                                   "it again, or use reduction='none'.")
            ctx.consumed = True
            g = grad_out.to(ctx.saved_tensors[0].dtype)
            grads = tuple(None if t is None else t.mul_(g) for t in ctx.saved_tensors)
        else:  # recompute each chunk's logits and scale row i by grad_out[i]
            x, weight, bias, target, kept = ctx.saved_tensors
            grads = _zero_grads(x, weight, bias)
            cdt = compute_dtype(x.dtype)
            _chunk_pass(x, weight, bias, target, kept, ctx.options, grads=grads,
                        row_scale_of=lambda idx: as_row_scale(grad_out[idx], 1.0, idx.shape[0], cdt))
        return tuple(None if g is None else g.to(dtype) for g, dtype in zip(grads, ctx.dtypes, strict=True)) + \
            (None,) * 7


def linear_cross_entropy(input, weight, target, *, bias=None, ignore_index: int = -100, label_smoothing: float = 0.0,
                         reduction: str = "mean", z_loss: float = 0.0, softcap: float | None = None,
                         chunk_size: int | None = None):
    """Cross-entropy of a linear layer's logits without materialising them.

    Equals ``cross_entropy((input @ weight.T + bias).movedim(-1, 1), target, ...)`` (this library's
    ``cross_entropy``, so with its semantics, z-loss and softcap) for ``input (..., D)``, ``weight (V, D)``,
    ``bias (V,)`` and integer ``target (...)``, but holds at most ``chunk_size`` rows of logits at once.
    ``chunk_size=None`` picks about 32 MiB of float32 logits per chunk. Gradients come back in the dtypes of
    ``input``, ``weight`` and ``bias``, accumulated in float32 (float64 for float64 inputs).

    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> x, w, y = torch.randn(5, 4), torch.randn(7, 4), torch.randint(0, 7, (5,))
    >>> from crossentropy.torch import cross_entropy
    >>> bool(torch.allclose(linear_cross_entropy(x, w, y, chunk_size=2), cross_entropy(x @ w.T, y)))
    True
    """
    check_tensor(input, "input")
    check_tensor(weight, "weight")
    reduction = check_reduction(reduction)
    label_smoothing, z_loss, softcap = check_label_smoothing(label_smoothing), check_z_loss(z_loss), \
        check_softcap(softcap)
    if input.dim() < 1 or weight.dim() != 2 or weight.shape[1] != input.shape[-1]:
        raise InputValueError(f"weight must have shape (V, D) with D = input.shape[-1] = "
                         f"{input.shape[-1] if input.dim() else None}, but got {tuple(weight.shape)} for input "
                         f"{tuple(input.shape)}.")
    vocab = weight.shape[0]
    if bias is not None:
        check_tensor(bias, "bias")
        if bias.shape != (vocab,):
            raise InputValueError(f"bias must have shape ({vocab},), but got {tuple(bias.shape)}.")
    t = index_target_last_dim(target, input, ignore_index, vocab, " (the vocabulary)")
    chunk_size = check_positive_int(chunk_size, "chunk_size") or default_chunk_size(vocab)
    rows = input.reshape(-1, input.shape[-1])
    loss = LinearCrossEntropyFunction.apply(rows, weight, bias, t, ignore_index, float(label_smoothing), reduction,
                                            float(z_loss), softcap, chunk_size)
    return loss.reshape(target.shape) if reduction == "none" else loss


class LinearCrossEntropyLoss(nn.Module):
    """Module form of ``linear_cross_entropy``: ``loss_fn(input, weight, target, bias=None)``."""

    def __init__(self, ignore_index: int = -100, label_smoothing: float = 0.0, reduction: str = "mean", *,
                 z_loss: float = 0.0, softcap: float | None = None, chunk_size: int | None = None):
        super().__init__()
        check_reduction(reduction)
        check_label_smoothing(label_smoothing)
        check_z_loss(z_loss)
        check_softcap(softcap)
        self.options = {"ignore_index": ignore_index, "label_smoothing": label_smoothing, "reduction": reduction,
                        "z_loss": z_loss, "softcap": softcap, "chunk_size": chunk_size}

    def forward(self, input, weight, target, bias=None):
        return linear_cross_entropy(input, weight, target, bias=bias, **self.options)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.options.items())
