"""Per-token statistics returned next to a loss (``return_stats=True``), computed in the loss's own pass over the
logits (``rules.rows.softmax_rows(..., stats=True)``), never from stored full logits.

With ``p = softmax(zc)`` of the (capped) logits of a token whose target class is ``y``::

    lse       = log sum_c exp(zc_c)
    entropy   = -sum_c p_c log p_c            (of the capped softmax)
    p_target  = p_y                           (0 for an ignored token)
    predicted = argmax_c zc_c                 (the first maximum)
    correct   = predicted == y                (False for an ignored token)

All five are non-differentiable and have the target's batch shape; the floats are in the compute dtype (float32
for half and bfloat16 logits).
"""

from __future__ import annotations

import torch

from ..rules.options import check_index_stats
from ..rules.rows import TokenStats


def stats_buffers(n: int, dtype: torch.dtype, device) -> TokenStats:
    """Empty ``(n,)`` statistics, filled chunk by chunk (``write_rows``)."""
    return TokenStats(*(torch.empty(n, dtype=dt, device=device)
                        for dt in (dtype, dtype, dtype, torch.long, torch.bool)))


def from_rows(lse, entropy, p_target, predicted, target: torch.Tensor, keep: torch.Tensor) -> TokenStats:
    """The statistics of rows from ``softmax_rows(..., stats=True)`` and their index targets."""
    return TokenStats(lse, entropy, p_target, predicted, (predicted == target) & keep)


def write_rows(buffers: TokenStats, start: int, stop: int, r, target: torch.Tensor, keep: torch.Tensor) -> None:
    """Rows ``start:stop`` of ``buffers`` from the ``RowResult`` ``r`` of one chunk."""
    values = from_rows(r.lse, r.entropy, r.p_target, r.predicted, target, keep)
    for buffer, value in zip(buffers, values, strict=True):
        buffer[start:stop] = value


def check_index_targets(target: torch.Tensor) -> None:
    check_index_stats(not target.is_floating_point())
