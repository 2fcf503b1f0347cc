"""Chunked linear + cross-entropy for large vocabularies: the logits ``input @ linear_weight.T + linear_bias`` are
never held for more than one chunk of rows at a time.

For "mean" and "sum", the gradients that are needed (of the inputs that require grad) are accumulated during the
forward pass (the reduction's scale is known from the targets alone) and scaled in place by ``grad_output`` in
backward, so no logits are recomputed and no second copy of the gradients is made; such a loss can be
backpropagated once (a second backward raises). For "none", backward recomputes each chunk's logits, so any
per-token ``grad_output`` is exact. When grad mode is off or no input requires grad, only the loss is computed.

Ignored rows (target ``ignore_index``) are masked, not skipped: their coefficients are 0, so they add nothing to
the loss or the gradients, and nothing is read on the host (no ``nonzero``, no host reads of values): the function runs
under ``torch.compile(fullgraph=True)`` and never synchronises a CUDA stream.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn
from torch.autograd.function import once_differentiable

from ..constants import IGNORE_INDEX
from ..kernels.triton import linear as triton_linear
from ..kernels.triton import rows as triton_rows
from ..rules.errors import InputValueError
from ..rules.options import SoftmaxOptions, check_total_weight
from ..rules.reduction import reduce, reduction_scale
from ..rules.rows import softmax_rows
from ..rules.targets import coefficients
from . import _cpu
from ._autograd import row_scale as as_row_scale
from ._buffers import POOL
from ._inputs import (
    check_linear_head,
    check_sample_weight,
    check_tensor,
    check_weight,
    compute_dtype,
    index_target_last_dim,
)
from ._xp import TORCH
from .parallel import local_head, vocab_parallel_linear_cross_entropy_with
from .stats import TokenStats, stats_buffers, write_rows

CHUNK_BYTES = 64 << 20  # the float32 logits of one chunk (on CPU one chunk's logits live at a time)


def default_chunk_size(vocab: int, itemsize: int = 4) -> int:
    """Rows per chunk so that one chunk of logits takes about ``CHUNK_BYTES``."""
    return max(1, CHUNK_BYTES // (vocab * max(itemsize, 4)))


def _chunk_logits(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``x @ weight.T + bias``, written into a recycled buffer on CPU (``_buffers.POOL``)."""
    out = POOL.empty((x.shape[0], weight.shape[0]), x.dtype, x.device)
    return torch.mm(x, weight.T, out=out) if bias is None else torch.addmm(bias, x, weight.T, out=out)


def _chunk_pass(x, weight, bias, coef, options, loss_rows=None, grads=None, row_scale_of=None, stats=None) -> None:
    """One pass over the rows, a chunk of ``options.chunk_size`` at a time: write per-row losses into
    ``loss_rows`` and the statistics into ``stats``, and/or accumulate the gradients of ``sum_i row_scale_i l_i``
    into ``grads = (grad_x, grad_w, grad_b)`` (None for a gradient not needed). ``coef`` holds every row's
    coefficients (O(rows)); the chunk bounds depend on shapes only."""
    n, chunk = x.shape[0], options.chunk_size
    # half-precision inputs: the head is used in the compute dtype (float32), so each chunk's logits and their
    # gradient stay in float32 from the matmul on (one float32 copy of the head per pass, no bf16 rounding)
    cdt = compute_dtype(x.dtype)
    weight, bias = weight.to(cdt), None if bias is None else bias.to(cdt)
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        _one_chunk(x, weight, bias, coef.rows(start, stop), options, start, stop, loss_rows, grads,
                   None if grads is None else row_scale_of(start, stop), stats)


def _one_chunk(x, weight, bias, coef, options, start, stop, loss_rows, grads, row_scale, stats) -> None:
    """Rows ``start:stop`` of ``_chunk_pass`` (a function of its own, so the chunk's logits are freed, and on CPU
    their buffer recycled, before the next chunk's are made)."""
    cdt = compute_dtype(x.dtype)
    xc = x[start:stop].to(cdt)
    logits = _chunk_logits(xc, weight, bias)
    if options.impl == "compiled":  # one pass, the gradient written over the chunk's logits
        r = _cpu.softmax_rows(logits, coef, options, dtype=cdt, row_scale=row_scale, stats=stats is not None,
                              grad_into=None if row_scale is None else logits)
    elif options.impl == "triton":  # one kernel launch, the gradient written over the chunk's logits
        r = triton_rows.softmax_rows(logits, coef, z_loss=options.z_loss, softcap=options.softcap, dtype=cdt,
                                     row_scale=row_scale, stats=stats is not None,
                                     out=None if row_scale is None else logits)
    else:
        r = softmax_rows(TORCH, logits, coef, z_loss=options.z_loss, softcap=options.softcap, row_scale=row_scale,
                         work=logits, stats=stats is not None)
    if loss_rows is not None:
        loss_rows[start:stop] = r.loss
    if stats is not None:
        write_rows(stats, start, stop, r, coef.y, coef.keep)
    if grads is not None:
        grad_x, grad_w, grad_b = grads
        if grad_x is not None:
            grad_x[start:stop] = r.grad @ weight
        if grad_w is not None:
            grad_w.addmm_(r.grad.T, xc)
        if grad_b is not None:
            grad_b += r.grad.sum(0)


def _zero_grads(tensors, needed, dtype):
    return tuple(torch.zeros(t.shape, dtype=dtype, device=t.device) if t is not None and need else None
                 for t, need in zip(tensors, needed, strict=True))


def _scale(coef, options, total_weight, dtype):
    """The reduction's scale, from the coefficients' ``o`` (O(rows)): the targets alone."""
    return reduction_scale(TORCH, options.reduction, TORCH.total(coef.o), total_weight).to(dtype)


def _loss_only(x, weight, bias, coef, options, total_weight):
    """The loss (and statistics) without any gradient work: grad mode off, or no input requires grad."""
    cdt = compute_dtype(x.dtype)
    loss_rows = torch.empty(x.shape[0], dtype=cdt, device=x.device)
    buffers = stats_buffers(x.shape[0], cdt, x.device) if options.return_stats else None
    _chunk_pass(x, weight, bias, coef, options, loss_rows, stats=buffers)
    if options.reduction == "none":
        return loss_rows, buffers
    total = loss_rows.sum()
    if options.reduction == "mean":
        total = total * _scale(coef, options, total_weight, cdt)
    return total, buffers


class LinearCrossEntropyFunction(torch.autograd.Function):
    """``apply(x, weight, bias, coef, total_weight, options)``: the rows ``x (n, D)`` of a linear layer's input and
    the targets as the rules' coefficients; ``options`` a checked ``SoftmaxOptions`` with ``chunk_size`` set."""

    @staticmethod
    def forward(ctx, x, weight, bias, coef, total_weight, options):
        cdt = compute_dtype(x.dtype)
        reduction = options.reduction
        scale = _scale(coef, options, total_weight, cdt)
        loss_rows = torch.empty(x.shape[0], dtype=cdt, device=x.device)
        buffers = stats_buffers(x.shape[0], cdt, x.device) if options.return_stats else None
        grads = None
        if reduction != "none":
            grads = _zero_grads((x, weight, bias), ctx.needs_input_grad[:3], cdt)
        _chunk_pass(x, weight, bias, coef, options, loss_rows, grads,
                    lambda start, stop: scale.expand(stop - start), buffers)
        ctx.reduction, ctx.consumed = reduction, False
        ctx.dtypes = (x.dtype, weight.dtype, None if bias is None else bias.dtype)
        if grads is not None:  # "mean" / "sum": the gradients are final up to grad_output
            ctx.save_for_backward(*grads)
        else:
            ctx.save_for_backward(x, weight, bias)
            ctx.coef, ctx.options = coef, options
        loss = reduce(TORCH, loss_rows, reduction, scale).to(loss_rows.dtype)
        if buffers is None:
            return loss
        ctx.mark_non_differentiable(*buffers)
        return (loss, *buffers)

    @staticmethod
    @once_differentiable  # the chunk pass is not itself differentiable: a double backward raises, not lies
    def backward(ctx, grad_out, *_stats):
        if ctx.reduction != "none":  # scale the gradients made in forward in place: no second copy of them
            if ctx.consumed:
                raise RuntimeError("linear_cross_entropy computes its 'mean'/'sum' gradients in forward and scales "
                                   "them in place, so backward can run once; recompute the loss to differentiate "
                                   "it again, or use reduction='none'.")
            ctx.consumed = True
            grads = tuple(None if t is None else t.mul_(grad_out.to(t.dtype)) for t in ctx.saved_tensors)
        else:  # recompute each chunk's logits and scale row i by grad_out[i]
            x, weight, bias = ctx.saved_tensors
            cdt = compute_dtype(x.dtype)
            grads = _zero_grads((x, weight, bias), ctx.needs_input_grad[:3], cdt)
            _chunk_pass(x, weight, bias, ctx.coef, ctx.options, grads=grads,
                        row_scale_of=lambda start, stop: as_row_scale(grad_out[start:stop], 1.0, stop - start, cdt))
        return tuple(None if g is None else g.to(dtype) for g, dtype in zip(grads, ctx.dtypes, strict=True)) + \
            (None,) * 3


def linear_cross_entropy(input, linear_weight, target, *, linear_bias=None, weight=None, reduction: str = "mean",
                         ignore_index: int | None = IGNORE_INDEX, label_smoothing: float = 0.0, z_loss: float = 0.0,
                         softcap: float | None = None, chunk_size: int | None = None, total_weight=None,
                         sample_weight=None, return_stats: bool = False, impl: str = "auto"):
    """Cross-entropy of a linear layer's logits without materialising them; a drop-in for
    ``torch.nn.functional.linear_cross_entropy`` (same argument names) with this library's semantics::

        z_i = input_i @ linear_weight.T + linear_bias        (capped: softcap * tanh(z / softcap))
        l_i = sum_c w_c t'_ic (lse_i - z_ic) + z_loss * o_i * lse_i**2      o_i = sum_c w_c t'_ic
        "mean" = sum_i l_i / W (0 when W == 0),  W = sum_i o_i, or total_weight when given

    that is, ``cross_entropy((input @ linear_weight.T + linear_bias).movedim(-1, 1), target, ...)`` for
    ``input (..., D)``, ``linear_weight (V, D)``, ``linear_bias (V,)``, class weights ``weight (V,)`` and integer
    ``target (...)``; a K-dimensional ``linear_weight (V, d1, ..., dK, D)`` (with ``linear_bias (V, d1, ..., dK)``
    and ``target (..., d1, ..., dK)``) scores V classes at each position, as torch's; holding at most
    ``chunk_size`` rows of logits at once (``None``: about 64 MiB of float32 logits per chunk). Gradients come
    back in the dtypes of the inputs, accumulated in float32 (float64 for float64 inputs); ``input``,
    ``linear_weight`` and ``linear_bias`` must share a dtype. ``return_stats=True`` returns ``(loss, TokenStats)``,
    computed chunk by chunk (``crossentropy.torch.stats``; one more chunk-sized buffer while a chunk is
    processed).
    ``sample_weight`` (one weight per target element) as in ``cross_entropy``. A ``DTensor`` head runs as
    ``parallel.local_head`` says: an FSDP2-sharded one is gathered for the call, a vocabulary-sharded one with a
    replicated ``DTensor`` input runs ``vocab_parallel_linear_cross_entropy``.

    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> x, w, y = torch.randn(5, 4), torch.randn(7, 4), torch.randint(0, 7, (5,))
    >>> from crossentropy.torch import cross_entropy
    >>> bool(torch.allclose(linear_cross_entropy(x, w, y, chunk_size=2), cross_entropy(x @ w.T, y)))
    True
    """
    if ignore_index is None:  # torch's default here: no index is ignored but -100, as in cross_entropy
        ignore_index = IGNORE_INDEX
    options = SoftmaxOptions.of(reduction=reduction, label_smoothing=label_smoothing, ignore_index=ignore_index,
                                z_loss=z_loss, softcap=softcap, return_stats=return_stats, chunk_size=chunk_size,
                                impl=impl)
    return linear_cross_entropy_with(options, input, linear_weight, target, linear_bias=linear_bias, weight=weight,
                                     total_weight=total_weight, sample_weight=sample_weight)


def linear_cross_entropy_with(options: SoftmaxOptions, input, linear_weight, target, *, linear_bias=None,
                              weight=None, total_weight=None, sample_weight=None):
    """``linear_cross_entropy`` with its scalar options given as one checked ``SoftmaxOptions`` (the module builds
    its own once, in ``__init__``); the tensors are checked here.

    >>> x, w, y = torch.zeros(2, 3), torch.zeros(4, 3), torch.tensor([0, 3])
    >>> round(float(linear_cross_entropy_with(SoftmaxOptions(chunk_size=1), x, w, y)), 6)  # log 4
    1.386294
    """
    check_tensor(input, "input")
    check_tensor(linear_weight, "linear_weight")
    total_weight = check_total_weight(TORCH, total_weight, options.reduction)
    input, linear_weight, linear_bias, group = local_head(input, linear_weight, linear_bias)
    if group is not None:  # a vocabulary-sharded DTensor head
        unsupported = [name for name, value in (("weight", weight), ("softcap", options.softcap),
                                                ("return_stats", options.return_stats)) if value not in (None, False)]
        if unsupported:
            raise InputValueError(f"a vocabulary-sharded (Shard(0)) DTensor head runs "
                                  f"vocab_parallel_linear_cross_entropy, which has no {', '.join(unsupported)}; "
                                  f"drop them, or gather the head.")
        return vocab_parallel_linear_cross_entropy_with(options, input, linear_weight, target,
                                                        linear_bias_shard=linear_bias, group=group,
                                                        total_weight=total_weight, sample_weight=sample_weight)
    if linear_weight.dim() > 2 and input.dim() >= 1 and linear_weight.shape[-1] == input.shape[-1]:
        if sample_weight is not None:
            raise InputValueError("sample_weight is not supported with a K-dimensional linear_weight; weigh the "
                                  "positions' losses with reduction='none' instead.")
        return _k_dimensional(options, input, linear_weight, target, linear_bias, weight, total_weight)
    vocab = check_linear_head(input, linear_weight, linear_bias)
    t = index_target_last_dim(target, input, options.ignore_index, vocab, " (the vocabulary)")
    # the chunk loop gets the kernel the dispatch point picked as options.impl, and a chunk size (on the Triton
    # path from the free device memory)
    cdt = compute_dtype(input.dtype)
    kernel = _cpu.softmax_kernel(options, input)
    chunk_size = options.chunk_size or (
        triton_linear.chunk_rows(input.numel() // max(1, input.shape[-1]), vocab, cdt, input.device)
        if kernel == "triton" else default_chunk_size(vocab))
    options = dataclasses.replace(options, impl=kernel, chunk_size=chunk_size)
    weight = check_weight(weight, vocab, dtype=cdt, device=input.device)
    s = check_sample_weight(sample_weight, tuple(target.shape), input.device)
    coef = coefficients(TORCH, t, vocab, options, w=weight, s=s, dtype=cdt, normalize=options.normalize(total_weight))
    rows = input.reshape(-1, input.shape[-1])
    leaves = (input, linear_weight, linear_bias)
    if torch.is_grad_enabled() and any(v is not None and v.requires_grad for v in leaves):
        out = LinearCrossEntropyFunction.apply(rows, linear_weight, linear_bias, coef, total_weight, options)
        loss, stats = (out[0], TokenStats(*out[1:])) if options.return_stats else (out, None)
    else:
        loss, stats = _loss_only(rows, linear_weight, linear_bias, coef, options, total_weight)
    if options.reduction == "none":
        loss = loss.reshape(target.shape)
    return (loss, stats.reshape(target.shape)) if options.return_stats else loss


def _k_dimensional(options, input, linear_weight, target, linear_bias, weight, total_weight):
    """torch's K-dimensional head: ``linear_weight (C, d1, ..., dK, D)`` scores C classes at each of the
    ``d1 x ... x dK`` positions, and ``target`` has shape ``input.shape[:-1] + (d1, ..., dK)``; the loss equals
    ``cross_entropy((input @ W.reshape(-1, D).T).reshape(..., C, d1, ..., dK), target)``. Each position is one
    ``linear_cross_entropy`` over its own ``(C, D)`` slice of the head; "mean" divides the sum over every position
    by the targets' total weight (or ``total_weight``)."""
    vocab, out = linear_weight.shape[0], tuple(linear_weight.shape[1:-1])
    lead = tuple(input.shape[:-1])
    check_tensor(target, "target", floating=False)
    if tuple(target.shape) != lead + out:
        raise InputValueError(f"target must have shape {lead + out} (input.shape[:-1] + linear_weight.shape[1:-1]) "
                              f"for a K-dimensional linear_weight {tuple(linear_weight.shape)}, but got "
                              f"{tuple(target.shape)}.")
    if linear_bias is not None and tuple(linear_bias.shape) != (vocab, *out):
        check_tensor(linear_bias, "linear_bias")
        raise InputValueError(f"linear_bias must have shape {(vocab, *out)} (linear_weight.shape[:-1]), but got "
                              f"{tuple(linear_bias.shape)}.")
    positions = 1
    for d in out:
        positions *= d
    w = linear_weight.reshape(vocab, positions, linear_weight.shape[-1])
    b = None if linear_bias is None else linear_bias.reshape(vocab, positions)
    t = target.reshape(*lead, positions)
    reduction, return_stats = options.reduction, options.return_stats
    each = dataclasses.replace(options, reduction="none" if reduction == "none" else "sum")
    parts = [linear_cross_entropy_with(each, input, w[:, p], t[..., p], linear_bias=None if b is None else b[:, p],
                                       weight=weight) for p in range(positions)]
    losses = [part[0] for part in parts] if return_stats else parts
    if reduction == "none":
        loss = torch.stack(losses, -1).reshape(target.shape) if losses else \
            torch.zeros(target.shape, dtype=compute_dtype(input.dtype), device=input.device)
    else:
        loss = torch.stack(losses).sum() if losses else torch.zeros((), dtype=compute_dtype(input.dtype),
                                                                     device=input.device)
        if reduction == "mean":
            cw = check_weight(weight, vocab, dtype=torch.float64, device=input.device)
            o = coefficients(TORCH, t.reshape(-1), vocab, options, w=cw, dtype=torch.float64).o
            loss = loss * reduction_scale(TORCH, "mean", TORCH.total(o), total_weight).to(loss.dtype)
    if not return_stats:
        return loss
    stats = TokenStats(*(torch.stack(fields, -1).reshape(target.shape)
                         for fields in zip(*(part[1] for part in parts), strict=True)))
    return loss, stats


class LinearCrossEntropyLoss(nn.Module):
    """Module form of ``linear_cross_entropy``: ``loss_fn(input, linear_weight, target, linear_bias=None)``."""

    def __init__(self, weight=None, ignore_index: int = IGNORE_INDEX, label_smoothing: float = 0.0,
                 reduction: str = "mean", *, z_loss: float = 0.0, softcap: float | None = None,
                 chunk_size: int | None = None, return_stats: bool = False, impl: str = "auto"):
        super().__init__()
        self.options = SoftmaxOptions(reduction=reduction, label_smoothing=label_smoothing, ignore_index=ignore_index,
                                      z_loss=z_loss, softcap=softcap, return_stats=return_stats,
                                      chunk_size=chunk_size, impl=impl)
        self.register_buffer("weight", weight)

    def forward(self, input, linear_weight, target, linear_bias=None, *, total_weight=None):
        return linear_cross_entropy_with(self.options, input, linear_weight, target, linear_bias=linear_bias,
                                         weight=self.weight, total_weight=total_weight)

    def extra_repr(self) -> str:
        return ", ".join(f"{f.name}={getattr(self.options, f.name)!r}" for f in dataclasses.fields(self.options))
