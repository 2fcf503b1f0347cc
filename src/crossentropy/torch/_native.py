"""``impl="native"``: torch's own fused cross-entropy kernels (``log_softmax`` + ``nll_loss``, label smoothing
included, forward and backward in ATen) for the ``cross_entropy`` calls whose semantics they share.

On a small input the per-call overhead of any Python-level path dominates, so ``impl="auto"`` takes this one there
(up to ``constants.NATIVE_AUTO_MAX`` logits). It runs the calls where torch's numbers are the rules' numbers: index
targets, no class or sample weights, no ``z_loss``, ``softcap``, statistics or ``return_lse``, float32 / float64
logits within +-sqrt of the dtype's largest value (infinite logits follow the limit rule, and huge ones overflow
handling, which torch does not share; one pass read on the host checks them), values readable on the host. Then::

    native(x, t, "none") == torch.nn.functional.cross_entropy(x, t, reduction="none", ...)
    native(x, t, "sum")  == torch.nn.functional.cross_entropy(x, t, reduction="sum", ...)
    native(x, t, "mean") == torch.nn.functional.cross_entropy(x, t, reduction="sum", ...) / W
                            W = the number of targets that are not ignore_index (o_i = 1 each), or total_weight,
                            and 0 when W == 0 (torch's own "mean" is NaN when every target is ignored)

which is ``cross_entropy(..., impl="reference")`` (``tests/test_impl.py``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..rules.reduction import reduction_scale
from ._xp import TORCH

_DTYPES = (torch.float32, torch.float64)


def native_reason(rows: torch.Tensor, target: torch.Tensor, options, *, weighted: bool, return_lse: bool
                  ) -> str | None:
    """Why torch's own kernels cannot run this ``cross_entropy`` call with the rules' numbers (None when they
    can); ``weighted``: class or sample weights are given."""
    if target.is_floating_point():
        return "torch's own kernels (impl='native') take index targets here, not probabilities"
    if weighted or options.z_loss or options.softcap is not None or options.return_stats or return_lse:
        return ("torch's own kernels (impl='native') run plain cross-entropy: no class or sample weights, z_loss, "
                "softcap, return_stats or return_lse")
    if rows.dtype not in _DTYPES:
        return f"torch's own kernels (impl='native') run float32 or float64 logits here, not {rows.dtype}"
    if not TORCH.checkable(rows):
        return "torch's own kernels (impl='native') need logits whose values can be checked on the host"
    # one pass read on the host: logits within +-sqrt(max) of the dtype (no NaN, no infinity, even on an ignored
    # row, where torch's gradient is NaN; and no overflow in torch's smoothing sum, where it gives NaN for our inf)
    if rows.numel():
        low, high = torch.aminmax(rows.detach())
        bound = math.sqrt(torch.finfo(rows.dtype).max)
        if not -bound <= low.item() <= high.item() <= bound:
            return ("infinite, NaN or huge logits (beyond +-sqrt of the dtype's largest value) follow the rules' "
                    "limit rule and overflow handling, which torch's own kernels do not share")
    return None


def native_cross_entropy(rows: torch.Tensor, target: torch.Tensor, options, total_weight=None) -> torch.Tensor:
    """The loss of rows ``(n, C)`` of finite logits (``native_reason``) against index targets ``(n,)`` through
    ``torch.nn.functional.cross_entropy`` (see the module docstring): per row for "none", reduced for "sum" and
    "mean"; torch's autograd gives the gradient.

    >>> from crossentropy.rules.options import SoftmaxOptions
    >>> x = torch.zeros(2, 4)
    >>> float(native_cross_entropy(x, torch.tensor([-100, -100]), SoftmaxOptions()))  # torch's own "mean": nan
    0.0
    """
    kwargs = {"ignore_index": options.ignore_index, "label_smoothing": options.label_smoothing}
    if options.reduction == "none":
        return F.cross_entropy(rows, target, reduction="none", **kwargs)
    if options.reduction == "mean" and total_weight is None:
        loss = F.cross_entropy(rows, target, reduction="mean", **kwargs)  # sum / #kept: the rules' o_i = 1
        if math.isfinite(loss.detach().item()):
            return loss
        # finite logits: only torch's 0 / 0 of every target ignored, where the rules' "mean" is 0
        return F.cross_entropy(rows, target, reduction="sum", **kwargs) * 0.0
    loss = F.cross_entropy(rows, target, reduction="sum", **kwargs)
    if options.reduction == "mean":
        loss = loss * reduction_scale(TORCH, "mean", loss, total_weight).to(loss.dtype)
    return loss
