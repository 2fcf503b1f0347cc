"""Thin ``torch.nn.Module`` wrappers over ``crossentropy.torch.functional``, named as their ``torch.nn`` twins.

Every module checks its options in ``__init__``; the softmax-family modules keep them as one options object."""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from ..constants import IGNORE_INDEX
from ..rules.options import (
    FocalOptions,
    SoftmaxOptions,
    check_eps,
    check_gamma,
    check_label_smoothing,
    check_nonnegative,
    check_reduction,
)
from . import functional as F


class _Loss(nn.Module):
    """A loss module: its options are checked in ``__init__``, once (bad values raise there, not at the first
    forward)."""

    def __init__(self, reduction: str = "mean"):
        super().__init__()
        self.reduction = check_reduction(reduction)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


class _OptionsLoss(nn.Module):
    """A softmax-family loss module holding one checked options object (``rules.options``), built in
    ``__init__`` and passed whole to the functional on every call."""

    def extra_repr(self) -> str:
        return ", ".join(f"{f.name}={getattr(self.options, f.name)!r}" for f in dataclasses.fields(self.options))


class CrossEntropyLoss(_OptionsLoss):
    """Drop-in for ``torch.nn.CrossEntropyLoss``, plus ``z_loss``, ``softcap``, ``return_lse``, ``return_stats``,
    ``impl`` and, in ``forward``, ``total_weight``.

    >>> loss_fn = CrossEntropyLoss(label_smoothing=0.1)
    >>> x, y = torch.zeros(2, 3), torch.tensor([0, 2])
    >>> round(float(loss_fn(x, y, total_weight=4.0)), 6)  # sum_i l_i / 4
    0.549306
    """

    def __init__(self, weight: torch.Tensor | None = None, ignore_index: int = IGNORE_INDEX, reduction: str = "mean",
                 label_smoothing: float = 0.0, *, z_loss: float = 0.0, softcap: float | None = None,
                 return_lse: bool = False, return_stats: bool = False, impl: str = "auto"):
        super().__init__()
        self.options = SoftmaxOptions(reduction=reduction, label_smoothing=label_smoothing, ignore_index=ignore_index,
                                      z_loss=z_loss, softcap=softcap, return_stats=return_stats, impl=impl)
        self.register_buffer("weight", weight)
        self.return_lse = return_lse

    def forward(self, input, target, *, total_weight=None, sample_weight=None):
        return F.cross_entropy_with(self.options, input, target, self.weight, total_weight=total_weight,
                                    sample_weight=sample_weight, return_lse=self.return_lse)


class SoftmaxFocalLoss(_OptionsLoss):
    """Module form of ``softmax_focal_loss``; ``forward`` takes ``total_weight`` and ``sample_weight``."""

    def __init__(self, gamma: float = 2.0, alpha=None, ignore_index: int = IGNORE_INDEX, reduction: str = "mean",
                 label_smoothing: float = 0.0, *, impl: str = "auto"):
        super().__init__()
        self.options = FocalOptions(gamma=gamma, reduction=reduction, label_smoothing=label_smoothing,
                                    ignore_index=ignore_index, impl=impl)
        self.register_buffer("alpha", alpha if isinstance(alpha, torch.Tensor) else None)
        self.alpha_scalar = None if isinstance(alpha, torch.Tensor) else alpha

    def forward(self, input, target, *, total_weight=None, sample_weight=None):
        alpha = self.alpha if self.alpha is not None else self.alpha_scalar
        return F.softmax_focal_loss_with(self.options, input, target, alpha, total_weight=total_weight,
                                         sample_weight=sample_weight)


class BCEWithLogitsLoss(_Loss):
    """Drop-in for ``torch.nn.BCEWithLogitsLoss`` ("mean" with ``weight`` is the weighted average)."""

    def __init__(self, weight: torch.Tensor | None = None, reduction: str = "mean",
                 pos_weight: torch.Tensor | None = None, *, label_smoothing: float = 0.0):
        super().__init__(reduction)
        self.register_buffer("weight", weight)
        self.register_buffer("pos_weight", pos_weight)
        self.label_smoothing = check_label_smoothing(label_smoothing)

    def forward(self, input, target):
        return F.binary_cross_entropy_with_logits(input, target, self.weight, self.reduction, self.pos_weight,
                                                  label_smoothing=self.label_smoothing)


class BCELoss(_Loss):
    """Drop-in for ``torch.nn.BCELoss``, without PyTorch's clamp of log at -100 (see ``eps``)."""

    def __init__(self, weight: torch.Tensor | None = None, reduction: str = "mean", *,
                 label_smoothing: float = 0.0, eps: float | None = None):
        super().__init__(reduction)
        self.register_buffer("weight", weight)
        self.label_smoothing, self.eps = check_label_smoothing(label_smoothing), check_eps(eps)

    def forward(self, input, target):
        return F.binary_cross_entropy(input, target, self.weight, self.reduction,
                                      label_smoothing=self.label_smoothing, eps=self.eps)


class SigmoidFocalLoss(_Loss):
    def __init__(self, gamma: float = 2.0, alpha: float | None = None, reduction: str = "mean", *,
                 label_smoothing: float = 0.0):
        super().__init__(reduction)
        self.gamma, self.alpha, self.label_smoothing = check_gamma(gamma), alpha, check_label_smoothing(label_smoothing)

    def forward(self, input, target, weight=None):
        return F.sigmoid_focal_loss(input, target, self.gamma, self.alpha, self.reduction, weight=weight,
                                    label_smoothing=self.label_smoothing)


class PoissonNLLLoss(_Loss):
    def __init__(self, log_input: bool = True, full: bool = False, eps: float = 1e-8, reduction: str = "mean"):
        super().__init__(reduction)
        self.log_input, self.full, self.eps = log_input, full, check_nonnegative(eps, "eps")

    def forward(self, input, target):
        return F.poisson_nll_loss(input, target, self.log_input, self.full, self.eps, self.reduction)


class GaussianNLLLoss(_Loss):
    def __init__(self, *, full: bool = False, eps: float = 1e-6, reduction: str = "mean"):
        super().__init__(reduction)
        self.full, self.eps = full, check_nonnegative(eps, "eps")

    def forward(self, input, target, var):
        return F.gaussian_nll_loss(input, target, var, self.full, self.eps, self.reduction)
