"""Thin ``torch.nn.Module`` wrappers over ``crossentropy.torch.functional``, named as their ``torch.nn`` twins."""

from __future__ import annotations

import torch
from torch import nn

from ..constants import IGNORE_INDEX
from ..rules.options import check_label_smoothing, check_reduction, check_softcap, check_z_loss
from . import functional as F


class _Loss(nn.Module):
    def __init__(self, reduction: str = "mean"):
        super().__init__()
        check_reduction(reduction)
        self.reduction = reduction

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


class CrossEntropyLoss(_Loss):
    """Drop-in for ``torch.nn.CrossEntropyLoss``, plus ``z_loss``, ``softcap`` and ``return_lse``."""

    def __init__(self, weight: torch.Tensor | None = None, ignore_index: int = IGNORE_INDEX, reduction: str = "mean",
                 label_smoothing: float = 0.0, *, z_loss: float = 0.0, softcap: float | None = None,
                 return_lse: bool = False):
        super().__init__(reduction)
        check_label_smoothing(label_smoothing)
        check_z_loss(z_loss)
        check_softcap(softcap)
        self.register_buffer("weight", weight)
        self.ignore_index, self.label_smoothing = ignore_index, label_smoothing
        self.z_loss, self.softcap, self.return_lse = z_loss, softcap, return_lse

    def forward(self, input, target):
        return F.cross_entropy(input, target, self.weight, self.ignore_index, self.reduction, self.label_smoothing,
                               z_loss=self.z_loss, softcap=self.softcap, return_lse=self.return_lse)


class SoftmaxFocalLoss(_Loss):
    def __init__(self, gamma: float = 2.0, alpha=None, ignore_index: int = IGNORE_INDEX, reduction: str = "mean",
                 label_smoothing: float = 0.0):
        super().__init__(reduction)
        self.register_buffer("alpha", alpha if isinstance(alpha, torch.Tensor) else None)
        self.alpha_scalar = None if isinstance(alpha, torch.Tensor) else alpha
        self.gamma, self.ignore_index, self.label_smoothing = gamma, ignore_index, label_smoothing

    def forward(self, input, target):
        alpha = self.alpha if self.alpha is not None else self.alpha_scalar
        return F.softmax_focal_loss(input, target, self.gamma, alpha, self.ignore_index, self.reduction,
                                    self.label_smoothing)


class BCEWithLogitsLoss(_Loss):
    """Drop-in for ``torch.nn.BCEWithLogitsLoss`` ("mean" with ``weight`` is the weighted average)."""

    def __init__(self, weight: torch.Tensor | None = None, reduction: str = "mean",
                 pos_weight: torch.Tensor | None = None, *, label_smoothing: float = 0.0):
        super().__init__(reduction)
        self.register_buffer("weight", weight)
        self.register_buffer("pos_weight", pos_weight)
        self.label_smoothing = label_smoothing

    def forward(self, input, target):
        return F.binary_cross_entropy_with_logits(input, target, self.weight, self.reduction, self.pos_weight,
                                                  label_smoothing=self.label_smoothing)


class BCELoss(_Loss):
    """Drop-in for ``torch.nn.BCELoss``, without PyTorch's clamp of log at -100 (see ``eps``)."""

    def __init__(self, weight: torch.Tensor | None = None, reduction: str = "mean", *,
                 label_smoothing: float = 0.0, eps: float | None = None):
        super().__init__(reduction)
        self.register_buffer("weight", weight)
        self.label_smoothing, self.eps = label_smoothing, eps

    def forward(self, input, target):
        return F.binary_cross_entropy(input, target, self.weight, self.reduction,
                                      label_smoothing=self.label_smoothing, eps=self.eps)


class SigmoidFocalLoss(_Loss):
    def __init__(self, gamma: float = 2.0, alpha: float | None = None, reduction: str = "mean", *,
                 label_smoothing: float = 0.0):
        super().__init__(reduction)
        self.gamma, self.alpha, self.label_smoothing = gamma, alpha, label_smoothing

    def forward(self, input, target, weight=None):
        return F.sigmoid_focal_loss(input, target, self.gamma, self.alpha, self.reduction, weight=weight,
                                    label_smoothing=self.label_smoothing)


class PoissonNLLLoss(_Loss):
    def __init__(self, log_input: bool = True, full: bool = False, eps: float = 1e-8, reduction: str = "mean"):
        super().__init__(reduction)
        self.log_input, self.full, self.eps = log_input, full, eps

    def forward(self, input, target):
        return F.poisson_nll_loss(input, target, self.log_input, self.full, self.eps, self.reduction)


class GaussianNLLLoss(_Loss):
    def __init__(self, *, full: bool = False, eps: float = 1e-6, reduction: str = "mean"):
        super().__init__(reduction)
        self.full, self.eps = full, eps

    def forward(self, input, target, var):
        return F.gaussian_nll_loss(input, target, var, self.full, self.eps, self.reduction)
