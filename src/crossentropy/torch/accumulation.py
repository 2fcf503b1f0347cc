"""The weight of a whole batch split into micro-batches and ranks: the exact "mean" under gradient accumulation
and data parallelism, with no host read."""

from __future__ import annotations

import torch.distributed as dist

from ..constants import IGNORE_INDEX
from ..rules.errors import InputValueError
from ..rules.options import SoftmaxOptions, check_unit_interval
from ..rules.reduction import batch_weight
from ._inputs import check_sample_weight, check_tensor, check_weight
from ._xp import TORCH


def _target_rows(t, i: int, n_classes: int | None):
    """One micro-batch's targets as rows, ``(n,)`` long indices or ``(n, C)`` probabilities (class dim 1), and
    their batch shape."""
    name = f"targets[{i}]"
    check_tensor(t, name, floating=False)
    if not t.is_floating_point():
        return t.reshape(-1).long(), tuple(t.shape)
    if t.dim() == 0:
        raise InputValueError(f"{name} holds probabilities, so it needs a class dim ((C,), (N, C) or "
                              f"(N, C, d1, ...)), but got a scalar. Pass class indices as an integer tensor.")
    check_unit_interval(TORCH, t, name, "Soft targets are probabilities; pass class indices as integers.")
    p = t.unsqueeze(0) if t.dim() == 1 else t
    if n_classes is not None and p.shape[1] != n_classes:
        raise InputValueError(f"{name} has {p.shape[1]} classes along dim 1, but weight has {n_classes}.")
    return p.movedim(1, -1).reshape(-1, p.shape[1]), (p.shape[0],) + tuple(p.shape[2:])


def total_weight(targets, *, weight=None, ignore_index: int = IGNORE_INDEX, label_smoothing: float = 0.0, group=None,
                 sample_weight=None):
    """``W = sum_i o_i`` over every target of ``targets`` and, when ``torch.distributed`` is initialised, of every
    rank of ``group`` (the default group when None): the denominator of ``reduction="mean"`` for the whole batch,
    with ``o_i = sum_c w_c t'_ic`` (0 for an ignored index target) as in ``cross_entropy``.

    ``targets`` is one target tensor or a list / tuple of them (the micro-batches), class indices or probabilities
    (class dim 1, as in ``cross_entropy``). Returns a 0-d float64 tensor on the targets' device, never read on the
    host (one SUM all-reduce across ranks). Passing ``total_weight=W`` to every micro-batch's loss on every rank
    makes the gradients summed over micro-batches and ranks exactly the gradient of the global "mean". Under
    DistributedDataParallel, which averages gradients over the ``world_size`` ranks, multiply each loss by
    ``world_size``. ``sample_weight`` gives the per-token weights of the losses (one tensor per target tensor, in
    the same structure): then ``o_i`` is multiplied by ``s_i``, as the losses do.

    >>> import torch
    >>> float(total_weight([torch.tensor([0, 2, -100]), torch.tensor([1])], weight=torch.tensor([1.0, 2.0, 0.5])))
    3.5
    """
    batches = list(targets) if isinstance(targets, (list, tuple)) else [targets]
    if not batches:
        raise InputValueError("targets is empty; pass a target tensor or a non-empty list of them.")
    options = SoftmaxOptions.of(ignore_index=ignore_index, label_smoothing=label_smoothing)
    n_classes = None
    if weight is not None:
        check_tensor(weight, "weight")
        if weight.dim() != 1:
            raise InputValueError(f"weight must be one weight per class (1-D), but got shape {tuple(weight.shape)}.")
        n_classes = weight.shape[0]
        weight = check_weight(weight, n_classes)
    rows, shapes = zip(*(_target_rows(t, i, n_classes) for i, t in enumerate(batches)), strict=True)
    s = None
    if sample_weight is not None:
        weights = list(sample_weight) if isinstance(sample_weight, (list, tuple)) else [sample_weight]
        if len(weights) != len(batches):
            raise InputValueError(f"sample_weight must hold one weight tensor per target tensor ({len(batches)}), "
                                  f"but got {len(weights)}.")
        s = [check_sample_weight(sw, shape, r.device) for sw, shape, r in zip(weights, shapes, rows, strict=True)]
    total = batch_weight(TORCH, list(rows), options, w=weight, s=s)
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(total, op=dist.ReduceOp.SUM, group=group)
    return total
