"""Vocab-parallel cross-entropy on torch.distributed, as Megatron shards a language model's output layer.

Each rank holds a contiguous slice of the vocabulary, in rank order; uneven slices are allowed. The logits are
never gathered: per step the ranks exchange one MAX all-reduce of the row maxima and one SUM all-reduce that
carries the sum of exponentials, the target logit and the smoothing term together, all O(tokens) and independent
of the vocabulary size. The result equals the single-process ``cross_entropy`` on the concatenated logits. The
class axis is the last one (``(..., V_shard)``), as in Megatron's ``[sequence, batch, vocab / p]`` layout.
"""

from __future__ import annotations

import torch
import torch.distributed as dist

from ..rules.errors import InputValueError
from ._autograd import as_rows, compute_dtype, reduction_scale
from .functional import _check_options, _check_tensor, _index_target_last_dim


def _vocab_offset(shard_size: int, group, device) -> tuple[torch.Tensor, torch.Tensor]:
    """(first vocabulary index of this rank's slice, total vocabulary size), as tensors (no host read)."""
    sizes = [torch.zeros((), dtype=torch.long, device=device) for _ in range(dist.get_world_size(group))]
    dist.all_gather(sizes, torch.tensor(shard_size, dtype=torch.long, device=device), group=group)
    sizes = torch.stack(sizes)
    rank = dist.get_rank(group)
    return sizes[:rank].sum(), sizes.sum()


class VocabParallelCrossEntropyFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits, target, group, ignore_index, smoothing, reduction, z_loss):
        cdt = compute_dtype(logits.dtype)
        z = logits.to(cdt)
        shard = z.shape[-1]
        start, vocab = _vocab_offset(shard, group, z.device)
        m = z.amax(-1)
        dist.all_reduce(m, op=dist.ReduceOp.MAX, group=group)
        s = z - m[:, None]
        local = target - start
        mine = (local >= 0) & (local < shard)
        local = torch.where(mine, local, torch.zeros_like(local))
        stats = torch.stack([torch.exp(s).sum(-1),
                             torch.where(mine, s.gather(1, local[:, None]).squeeze(1), torch.zeros_like(m)),
                             s.sum(-1)])
        dist.all_reduce(stats, op=dist.ReduceOp.SUM, group=group)  # sum-exp, target logit, smoothing term
        total, s_target, s_sum = stats
        log_s = torch.log(total)
        lse = m + log_s
        keep = (target != ignore_index).to(cdt)
        loss = keep * ((1 - smoothing) * (log_s - s_target) + smoothing * (log_s - s_sum / vocab.to(cdt)))
        if z_loss:
            loss = loss + keep * z_loss * lse * lse
        scale = reduction_scale(keep.sum(), reduction)
        ctx.save_for_backward(logits, lse, local, mine, keep, scale, vocab)
        ctx.options = (smoothing, z_loss)
        return loss if reduction == "none" else loss.sum() * scale

    @staticmethod
    def backward(ctx, grad_out):
        logits, lse, local, mine, keep, scale, vocab = ctx.saved_tensors
        smoothing, z_loss = ctx.options
        z = logits.to(lse.dtype)
        row_scale = as_rows(grad_out.to(z.dtype) * scale, z.shape[0]) * keep
        p = torch.exp(z - lse[:, None])  # this shard's part of the softmax over the whole vocabulary
        factor = row_scale * (1 + 2 * z_loss * lse) if z_loss else row_scale
        g = p * factor[:, None] - (row_scale * smoothing / vocab.to(z.dtype))[:, None]
        g = g.scatter_add(1, local[:, None], -(row_scale * (1 - smoothing) * mine)[:, None])
        return g.to(logits.dtype), None, None, None, None, None, None


class _AllReduceGrad(torch.autograd.Function):
    """Identity forward; the backward sums the gradient over the group (each rank's partial input gradient)."""

    @staticmethod
    def forward(ctx, x, group):
        ctx.group = group
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        grad = grad.contiguous()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM, group=ctx.group)
        return grad, None


def _check(logits_or_input, target, ignore_index, label_smoothing, reduction, z_loss, name):
    if not dist.is_available() or not dist.is_initialized():
        raise RuntimeError(f"{name} needs torch.distributed: call torch.distributed.init_process_group first.")
    _check_tensor(logits_or_input, "input" if name.endswith("linear_cross_entropy") else "logits_shard")
    _check_options(reduction, label_smoothing, z_loss)
    return _index_target_last_dim(target, logits_or_input, ignore_index)


def vocab_parallel_cross_entropy(logits_shard, target, *, group=None, ignore_index: int = -100,
                                 label_smoothing: float = 0.0, reduction: str = "mean", z_loss: float = 0.0):
    """Cross-entropy of logits sharded along the vocabulary across ``group``.

    Equals ``cross_entropy(torch.cat(all_shards, -1).movedim(-1, 1), target, ...)`` on every rank, for
    ``logits_shard (..., V_rank)`` and the full-vocabulary integer ``target (...)`` (the same on every rank).
    The gradient flows to this rank's shard only; backward needs no communication.
    """
    t = _check(logits_shard, target, ignore_index, label_smoothing, reduction, z_loss, "vocab_parallel_cross_entropy")
    rows = logits_shard.reshape(-1, logits_shard.shape[-1])
    loss = VocabParallelCrossEntropyFunction.apply(rows, t, group, ignore_index,
                                                   float(label_smoothing), reduction, float(z_loss))
    return loss.reshape(target.shape) if reduction == "none" else loss


def vocab_parallel_linear_cross_entropy(input, weight_shard, target, *, group=None, bias_shard=None,
                                        ignore_index: int = -100, label_smoothing: float = 0.0,
                                        reduction: str = "mean", z_loss: float = 0.0):
    """``vocab_parallel_cross_entropy(input @ weight_shard.T + bias_shard, target, ...)``, with ``input``
    replicated on every rank: its gradient is the full gradient on every rank (summed over the group in backward).
    """
    _check(input, target, ignore_index, label_smoothing, reduction, z_loss, "vocab_parallel_linear_cross_entropy")
    _check_tensor(weight_shard, "weight_shard")
    if weight_shard.dim() != 2 or weight_shard.shape[1] != input.shape[-1]:
        raise InputValueError(f"weight_shard must have shape (V_rank, D) with D = {input.shape[-1]}, but got "
                         f"{tuple(weight_shard.shape)}.")
    logits = torch.nn.functional.linear(_AllReduceGrad.apply(input, group), weight_shard, bias_shard)
    return vocab_parallel_cross_entropy(logits, target, group=group, ignore_index=ignore_index,
                                        label_smoothing=label_smoothing, reduction=reduction, z_loss=z_loss)
