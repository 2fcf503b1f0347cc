"""Vocab-parallel cross-entropy on torch.distributed, as Megatron shards a language model's output layer.

Each rank holds a contiguous slice of the vocabulary, in rank order; uneven slices are allowed. The logits are
never gathered: per step the ranks exchange one MAX all-reduce of the row maxima and one SUM all-reduce that
carries the sum of exponentials, the target logit and the smoothing term together, all O(tokens) and independent
of the vocabulary size. The result equals the single-process ``cross_entropy`` on the concatenated logits. The
class axis is the last one (``(..., V_shard)``), as in Megatron's ``[sequence, batch, vocab / p]`` layout.
"""

from __future__ import annotations

from dataclasses import replace

import torch
import torch.distributed as dist

try:
    from torch.distributed import tensor as dtensor
except ImportError:  # a torch built without distributed support
    dtensor = None

from ..constants import IGNORE_INDEX
from ..kernels.triton import rows as triton_rows
from ..rules.errors import InputValueError
from ..rules.options import SoftmaxOptions, check_total_weight
from ..rules.reduction import reduce, reduction_scale
from ..rules.rows import softmax_rows
from ..rules.targets import index_coefficients
from ._autograd import row_scale
from ._cpu import softmax_kernel
from ._inputs import check_sample_weight, check_tensor, compute_dtype, index_target_last_dim, loss_dtype
from ._xp import TORCH

_layouts: dict = {}


def _vocab_layout(shard_size: int, group) -> tuple[int, int]:
    """(first vocabulary index of this rank's slice, total vocabulary size). The sizes are gathered once per group
    and shard size, then cached: later steps exchange nothing for them."""
    key = (id(group), dist.get_rank(group), shard_size)
    if key not in _layouts:
        sizes = [None] * dist.get_world_size(group)
        dist.all_gather_object(sizes, shard_size, group=group)
        rank = dist.get_rank(group)
        _layouts[key] = (sum(sizes[:rank]), sum(sizes))
    return _layouts[key]


class _Shards:
    """The row max and the row sums of a vocabulary split over ``group`` (O(rows) per all-reduce)."""

    def __init__(self, group):
        self.group = group

    def max(self, m: torch.Tensor) -> torch.Tensor:
        m = m.contiguous()
        dist.all_reduce(m, op=dist.ReduceOp.MAX, group=self.group)
        return m

    def sum(self, *values: torch.Tensor):
        stacked = torch.stack(values)
        dist.all_reduce(stacked, op=dist.ReduceOp.SUM, group=self.group)
        return tuple(stacked)


def _shard_coefficients(target, sample_weight, shard: int, group, options, dtype, normalize: bool):
    """The whole row's coefficients (``o``, the smoothing term) with the target term kept on the rank whose slice
    holds the target class."""
    start, vocab = _vocab_layout(shard, group)
    coef = index_coefficients(TORCH, target, vocab, s=sample_weight, ignore_index=options.ignore_index,
                              label_smoothing=options.label_smoothing, dtype=dtype, normalize=normalize)
    local = target - start
    mine = (local >= 0) & (local < shard)
    return replace(coef, n_classes=shard, y=torch.where(mine, local, torch.zeros_like(local)),
                   a_y=torch.where(mine, coef.a_y, torch.zeros_like(coef.a_y)))


class VocabParallelCrossEntropyFunction(torch.autograd.Function):
    """``apply(logits, target, total_weight, group, options)``: one rank's ``(n, V_rank)`` logits; ``options`` a
    checked ``SoftmaxOptions``."""

    @staticmethod
    def forward(ctx, logits, target, sample_weight, total_weight, group, options):
        cdt = compute_dtype(logits.dtype)
        normalize = options.normalize(total_weight)
        coef = _shard_coefficients(target, sample_weight, logits.shape[-1], group, options, cdt, normalize)
        shards = _Shards(group)
        ctx.partials = None
        if options.impl == "triton":  # this shard's partials from the kernel, combined over the group
            part = triton_rows.shard_partials(logits, coef, softcap=None)
            m = shards.max(part.max.clone())  # the all-reduce writes in place: keep this shard's max
            total, linear = shards.sum(*triton_rows.combine_partials(part, m))
            loss, _ = triton_rows.partial_rows(coef, m, total, linear, options.z_loss)
            ctx.partials = (m, total)  # O(rows): the backward's second pass needs no collective
        else:
            loss = softmax_rows(TORCH, logits.to(cdt), coef, z_loss=options.z_loss, collective=shards).loss
        scale = reduction_scale(TORCH, options.reduction, TORCH.total(coef.o), total_weight)
        ctx.save_for_backward(logits, target, sample_weight, scale)
        ctx.group, ctx.options, ctx.normalize = group, options, normalize
        return reduce(TORCH, loss, options.reduction, scale)

    @staticmethod
    def backward(ctx, grad_out):
        logits, target, sample_weight, scale = ctx.saved_tensors
        cdt = compute_dtype(logits.dtype)
        coef = _shard_coefficients(target, sample_weight, logits.shape[-1], ctx.group, ctx.options, cdt,
                                   ctx.normalize)
        r_scale = row_scale(grad_out, scale, logits.shape[0], cdt)
        if ctx.partials is not None:  # the kernel's second pass, in the logits' dtype
            m, total = ctx.partials
            return (triton_rows.shard_grad(logits, coef, m, total, z_loss=ctx.options.z_loss, softcap=None,
                                           row_scale=r_scale), *(None,) * 5)
        r = softmax_rows(TORCH, logits.to(cdt), coef, z_loss=ctx.options.z_loss, collective=_Shards(ctx.group),
                         row_scale=r_scale)
        return r.grad.to(logits.dtype), *(None,) * 5


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


def _distributed(name: str) -> None:
    if not dist.is_available() or not dist.is_initialized():
        raise RuntimeError(f"{name} needs torch.distributed: call torch.distributed.init_process_group first.")


def vocab_parallel_cross_entropy(logits_shard, target, *, group=None, ignore_index: int = IGNORE_INDEX,
                                 label_smoothing: float = 0.0, reduction: str = "mean", z_loss: float = 0.0,
                                 total_weight=None, sample_weight=None, impl: str = "auto"):
    """Cross-entropy of logits sharded along the vocabulary across ``group``.

    Equals ``cross_entropy(torch.cat(all_shards, -1).movedim(-1, 1), target, ...)`` on every rank, for
    ``logits_shard (..., V_rank)`` and the full-vocabulary integer ``target (...)`` (the same on every rank),
    infinite logits included (a shard row that is all ``-inf``, as a padded vocabulary gives, costs nothing).
    The gradient flows to this rank's shard only. ``sample_weight`` (one weight per target element, the same on
    every rank) as in ``cross_entropy``. ``impl="triton"`` runs each shard's partial statistics and its gradient on
    the Triton kernels (the two all-reduces stay torch's); "compiled" has no collective and raises.
    """
    options = SoftmaxOptions.of(reduction=reduction, label_smoothing=label_smoothing, ignore_index=ignore_index,
                                z_loss=z_loss, impl=impl)
    return vocab_parallel_cross_entropy_with(options, logits_shard, target, group=group, total_weight=total_weight,
                                             sample_weight=sample_weight)


def vocab_parallel_cross_entropy_with(options: SoftmaxOptions, logits_shard, target, *, group=None,
                                      total_weight=None, sample_weight=None):
    """``vocab_parallel_cross_entropy`` with its scalar options given as one checked ``SoftmaxOptions``."""
    _distributed("vocab_parallel_cross_entropy")
    check_tensor(logits_shard, "logits_shard")
    total_weight = check_total_weight(TORCH, total_weight, options.reduction)
    t = index_target_last_dim(target, logits_shard, options.ignore_index)
    s = check_sample_weight(sample_weight, tuple(target.shape), t.device)
    # "reference" or "triton" (its partials) runs it; "compiled" raises (the compiled kernel has no collective)
    options = replace(options, impl=softmax_kernel(options, logits_shard, has_compiled=False))
    rows = logits_shard.reshape(-1, logits_shard.shape[-1])
    loss = VocabParallelCrossEntropyFunction.apply(rows, t, s, total_weight, group, options).to(loss_dtype(rows))
    return loss.reshape(target.shape) if options.reduction == "none" else loss


def vocab_parallel_linear_cross_entropy(input, linear_weight_shard, target, *, linear_bias_shard=None, group=None,
                                        ignore_index: int = IGNORE_INDEX, label_smoothing: float = 0.0,
                                        reduction: str = "mean", z_loss: float = 0.0, total_weight=None,
                                        sample_weight=None, impl: str = "auto"):
    """``vocab_parallel_cross_entropy(input @ linear_weight_shard.T + linear_bias_shard, target, ...)``, with
    ``input`` replicated on every rank: its gradient is the full gradient on every rank (summed over the group in
    backward). The argument names follow ``torch.nn.functional.linear_cross_entropy``.
    """
    options = SoftmaxOptions.of(reduction=reduction, label_smoothing=label_smoothing, ignore_index=ignore_index,
                                z_loss=z_loss, impl=impl)
    return vocab_parallel_linear_cross_entropy_with(options, input, linear_weight_shard, target,
                                                    linear_bias_shard=linear_bias_shard, group=group,
                                                    total_weight=total_weight, sample_weight=sample_weight)


def vocab_parallel_linear_cross_entropy_with(options: SoftmaxOptions, input, linear_weight_shard, target, *,
                                             linear_bias_shard=None, group=None, total_weight=None,
                                             sample_weight=None):
    """``vocab_parallel_linear_cross_entropy`` with its scalar options given as one checked ``SoftmaxOptions``."""
    _distributed("vocab_parallel_linear_cross_entropy")
    check_tensor(input, "input")
    check_tensor(linear_weight_shard, "linear_weight_shard")
    if linear_weight_shard.dim() != 2 or linear_weight_shard.shape[1] != input.shape[-1]:
        raise InputValueError(f"linear_weight_shard must have shape (V_rank, D) with D = {input.shape[-1]}, but got "
                              f"{tuple(linear_weight_shard.shape)}.")
    logits = torch.nn.functional.linear(_AllReduceGrad.apply(input, group), linear_weight_shard, linear_bias_shard)
    return vocab_parallel_cross_entropy_with(options, logits, target, group=group, total_weight=total_weight,
                                             sample_weight=sample_weight)


class VocabShards(_Shards):
    """``_Shards`` plus what ``linear_logprobs`` needs on a vocabulary split over ``group``: this rank's target
    coefficients, and the input gradient summed over the ranks (each rank's part comes from its slice)."""

    def coefficients(self, target, shard: int, options, dtype):
        """This rank's coefficients of ``target`` (unsmoothed, unweighted: log-probabilities of the target)."""
        unsmoothed = SoftmaxOptions.of(ignore_index=options.ignore_index)
        return _shard_coefficients(target, None, shard, self.group, unsmoothed, dtype, False)

    def sum_gradient(self, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM, group=self.group)
        return grad


def _is_dtensor(t) -> bool:
    return dtensor is not None and isinstance(t, dtensor.DTensor)


def local_head(input, linear_weight, linear_bias):
    """How a head given as ``DTensor`` runs: ``(input, weight, bias, group)`` as plain tensors, with ``group`` the
    process group of a vocabulary-parallel head (None otherwise).

    * ``input`` a ``DTensor`` replicated over a 1-D mesh and ``linear_weight`` sharded along the vocabulary
      (``Shard(0)``) over that mesh (tensor parallelism: every rank sees the same tokens): each rank keeps its slice,
      and the loss runs on the vocabulary-parallel path (O(tokens) communication).
    * ``input`` a plain tensor and ``linear_weight`` a ``DTensor`` (an FSDP2-sharded head read outside its module's
      forward; every rank sees its own tokens): the weight (and bias) is all-gathered for the call, and its gradient
      is averaged over the mesh and re-sharded (a ``Partial("avg")`` gradient), as FSDP2 reduces every parameter.
    """
    if not _is_dtensor(linear_weight):
        return input, linear_weight, linear_bias, None
    mesh = linear_weight.device_mesh
    if _is_dtensor(input):
        if mesh.ndim != 1 or tuple(linear_weight.placements) != (dtensor.Shard(0),) or \
                any(not p.is_replicate() for p in input.placements) or \
                (_is_dtensor(linear_bias) and tuple(linear_bias.placements) != (dtensor.Shard(0),)):
            raise InputValueError(f"a DTensor input runs a vocabulary-parallel head: it must be replicated and "
                                  f"linear_weight (and linear_bias) sharded along the vocabulary, Shard(0), over one "
                                  f"1-D mesh; but got input placements {tuple(input.placements)} and linear_weight "
                                  f"placements {tuple(linear_weight.placements)}. Pass a plain tensor input to "
                                  f"gather an FSDP2-sharded head instead.")
        bias = linear_bias.to_local() if _is_dtensor(linear_bias) else linear_bias
        return input.to_local(), linear_weight.to_local(), bias, mesh.get_group()

    def gathered(t):
        if not _is_dtensor(t):
            return t
        return t.redistribute(placements=[dtensor.Replicate()] * t.device_mesh.ndim).to_local(
            grad_placements=[dtensor.Partial("avg")] * t.device_mesh.ndim)
    return input, gathered(linear_weight), gathered(linear_bias), None
