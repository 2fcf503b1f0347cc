"""Drop-in replacements for the ``torch.nn.functional`` losses, with this library's semantics (docs/semantics.md).

Layouts are PyTorch's: the class dim is 1 (``(N, C)``, ``(N, C, d1, ...)`` or unbatched ``(C,)``), ``weight`` is
the class weights. Where the numbers differ from ``torch.nn.functional`` (docs/semantics.md):

* ``cross_entropy`` "mean" with ``weight`` together with soft targets or label smoothing is the weighted average
  ``sum l_i / sum o_i`` (PyTorch divides those terms differently, pytorch#107680 / #104776);
* when every target is ignored, "mean" is 0 with a zero gradient (PyTorch: NaN, pytorch#70348);
* the element-wise losses' ``weight`` "mean" is ``sum(w l) / sum(w)`` (PyTorch: ``mean(w l)``);
* ``binary_cross_entropy`` does not clamp ``log`` at -100: a zero probability on the target is ``inf``.

Extras for language-model training: ``z_loss`` (adds ``z_loss * lse**2`` per token, weighted like the token and
included in the returned loss), ``softcap`` (logits become ``c * tanh(logits / c)`` first) and ``return_lse``.
"""

from __future__ import annotations

import math
import numbers

import torch

from ..constants import IGNORE_INDEX
from ..kernels.dispatch import NO_TRITON_PATH
from ..rules.elementwise import gaussian_shapes
from ..rules.options import (
    RATE,
    FocalOptions,
    SoftmaxOptions,
    check_eps,
    check_gamma,
    check_label_smoothing,
    check_nonnegative,
    check_nonnegative_values,
    check_reduction,
    check_total_weight,
    check_unit_interval,
)
from ..rules.reduction import reduce_elementwise
from ..rules.targets import smooth
from ._autograd import CrossEntropyFunction, ElementwiseFunction, SoftmaxFocalFunction
from ._cpu import softmax_kernel
from ._inputs import (
    broadcast_weight,
    check_sample_weight,
    check_tensor,
    check_weight,
    class_rows,
    compute_dtype,
    loss_dtype,
    same_shape,
    shape_back,
)
from ._native import native_cross_entropy, native_reason
from ._xp import TORCH
from .stats import TokenStats, check_index_targets, from_rows


# --------------------------------------------------------------------------------------------- softmax family
def cross_entropy(input, target, weight=None, ignore_index: int = IGNORE_INDEX, reduction: str = "mean",
                  label_smoothing: float = 0.0, *, z_loss: float = 0.0, softcap: float | None = None,
                  total_weight=None, sample_weight=None, return_lse: bool = False, return_stats: bool = False,
                  impl: str = "auto"):
    """Cross-entropy of ``softmax(input, dim=1)`` against class indices or probabilities; a drop-in for
    ``torch.nn.functional.cross_entropy``::

        l_i = sum_c w_c t'_ic (lse_i - z_ic) + z_loss * o_i * lse_i**2      o_i = sum_c w_c t'_ic
        "mean" = sum_i l_i / W (0 when W == 0),  W = sum_i o_i, or total_weight when given

    with ``z = softcap * tanh(input / softcap)`` when ``softcap`` is set. ``total_weight`` (with "mean") is the
    weight of the whole batch across micro-batches and ranks (``crossentropy.torch.total_weight``). The gradient is
    analytic and built in float32 for half/bfloat16 inputs. ``return_lse=True`` also returns the
    (non-differentiable) per-token log-sum-exp, in the batch shape; ``return_stats=True`` returns
    ``(loss, TokenStats(lse, entropy, p_target, predicted, correct))`` for index targets, computed in the same pass
    (``crossentropy.torch.stats``). ``sample_weight`` (one non-negative weight per target element, the target's
    batch shape, or broadcasting to it) multiplies each ``l_i`` and ``o_i`` by ``s_i`` (docs/semantics.md, 4), so
    "mean" is ``sum_i s_i l_i / sum_i s_i o_i``; it gets no gradient. ``impl`` picks the kernel: "auto",
    "compiled" (the C kernel, CPU tensors), "reference" (the rules layer's torch code) or "triton"
    (docs/design.md).

    >>> x = torch.tensor([[2.3, 2.1, 4.5], [4.2, 3.2, 5.1]], dtype=torch.float64)
    >>> round(float(cross_entropy(x, torch.tensor([1, 2]), weight=torch.tensor([25.0, 25, 100]))), 6)
    0.870484
    """
    options = SoftmaxOptions.of(reduction=reduction, label_smoothing=label_smoothing, ignore_index=ignore_index,
                                z_loss=z_loss, softcap=softcap, return_stats=return_stats, impl=impl)
    return cross_entropy_with(options, input, target, weight, total_weight=total_weight, sample_weight=sample_weight,
                              return_lse=return_lse)


def cross_entropy_with(options: SoftmaxOptions, input, target, weight=None, *, total_weight=None,
                       sample_weight=None, return_lse: bool = False):
    """``cross_entropy`` with its scalar options given as one checked ``SoftmaxOptions`` (the modules build theirs
    once, in ``__init__``); the tensors are checked here.

    >>> x = torch.tensor([[2.3, 2.1, 4.5], [4.2, 3.2, 5.1]], dtype=torch.float64)
    >>> round(float(cross_entropy_with(SoftmaxOptions(label_smoothing=0.1), x, torch.tensor([1, 2]))), 6)
    1.516231
    """
    rows, t, batch, unbatched = class_rows(input, target, options.ignore_index, "cross_entropy")
    total_weight = check_total_weight(TORCH, total_weight, options.reduction)
    weight = check_weight(weight, rows.shape[1])
    s = check_sample_weight(sample_weight, batch, rows.device)
    if options.impl in ("auto", "native"):  # the dispatch point, for torch's own kernels (the others: below)
        native = native_reason(rows, t, options, weighted=weight is not None or s is not None, return_lse=return_lse)
        if softmax_kernel(options, rows, native=native) == "native":
            loss = native_cross_entropy(rows, t, options, total_weight)
            return shape_back(loss, batch, unbatched, options.reduction).to(loss_dtype(input))
    if options.return_stats:
        check_index_targets(t)
    loss, *per_row = CrossEntropyFunction.apply(rows, t, weight, s, total_weight, options)
    loss = shape_back(loss, batch, unbatched, options.reduction).to(loss_dtype(input))
    if options.return_stats:
        stats = from_rows(*per_row, t, t != options.ignore_index)
        return loss, TokenStats(*(shape_back(s, batch, unbatched, "none") for s in stats))
    if return_lse:
        return loss, shape_back(per_row[0], batch, unbatched, "none")
    return loss


def softmax_focal_loss(input, target, gamma: float = 2.0, alpha=None, ignore_index: int = IGNORE_INDEX,
                       reduction: str = "mean", label_smoothing: float = 0.0, *, total_weight=None,
                       sample_weight=None, impl: str = "auto"):
    """Focal loss on ``softmax(input, dim=1)``, in log space; ``alpha`` (None, a number, or one weight per class
    as a tensor or sequence) acts as class weights, "mean" included, and ``sample_weight`` as in ``cross_entropy``.
    Equals ``cross_entropy(..., weight=alpha)`` at ``gamma=0``. The gradient is finite at saturation for every
    ``gamma >= 0``.

    >>> x, y = torch.tensor([[3.0, 0.0, 0.0]]), torch.tensor([0])
    >>> bool(torch.isclose(softmax_focal_loss(x, y, gamma=0.0), cross_entropy(x, y)))
    True
    """
    options = FocalOptions.of(gamma=gamma, reduction=reduction, label_smoothing=label_smoothing,
                              ignore_index=ignore_index, impl=impl)
    return softmax_focal_loss_with(options, input, target, alpha, total_weight=total_weight,
                                   sample_weight=sample_weight)


def softmax_focal_loss_with(options: FocalOptions, input, target, alpha=None, *, total_weight=None,
                            sample_weight=None):
    """``softmax_focal_loss`` with its scalar options given as one checked ``FocalOptions``.

    >>> x, y = torch.tensor([[3.0, 0.0, 0.0]]), torch.tensor([0])
    >>> bool(softmax_focal_loss_with(FocalOptions(gamma=1.0), x, y) < cross_entropy(x, y))
    True
    """
    rows, t, batch, unbatched = class_rows(input, target, options.ignore_index, "softmax_focal_loss")
    softmax_kernel(options, rows, has_compiled=False, no_triton=NO_TRITON_PATH)  # "reference" runs it, others raise
    total_weight = check_total_weight(TORCH, total_weight, options.reduction)
    if alpha is not None and not isinstance(alpha, torch.Tensor) and torch.tensor(alpha).dim() == 0:
        check_nonnegative(alpha, "alpha")
    # A number or sequence becomes float64, as NumPy keeps it: "mean" divides it by its largest value before the
    # compute dtype sees it, so alpha=[1e39, ...] works with float32 input, as class weights do.
    alpha = check_weight(alpha, rows.shape[1], "alpha", dtype=torch.float64, device=rows.device)
    s = check_sample_weight(sample_weight, batch, rows.device)
    loss = SoftmaxFocalFunction.apply(rows, t, alpha, s, total_weight, options)
    return shape_back(loss, batch, unbatched, options.reduction).to(loss_dtype(input))


# --------------------------------------------------------------------------------------------- element-wise family
def _elementwise_inputs(input, target, label_smoothing, reduction, name: str):
    """Float ``input`` and ``target`` of one shape, and valid options; the smoothed targets in the compute dtype."""
    check_tensor(input, "input")
    check_tensor(target, "target")
    reduction = check_reduction(reduction)
    label_smoothing = check_label_smoothing(label_smoothing)
    same_shape(input, target)
    check_unit_interval(TORCH, target, f"{name}: target", "Binary targets are 0/1 labels or probabilities.")
    return smooth(target.to(compute_dtype(input.dtype)), label_smoothing, 2), reduction


def _reduce_elementwise(loss: torch.Tensor, weight, reduction: str, dtype) -> torch.Tensor:
    """The rules' element-wise reduction (semantics 5): "mean" is ``sum(w l) / sum(w)``, the plain mean without
    weights, and 0 when the total weight is 0 (an empty input included)."""
    w = None if weight is None else weight.to(loss.dtype).expand_as(loss)
    value, _ = reduce_elementwise(TORCH, loss, w, reduction)
    return value.to(dtype)


def binary_cross_entropy_with_logits(input, target, weight=None, reduction: str = "mean", pos_weight=None, *,
                                     label_smoothing: float = 0.0):
    """Binary / multi-label cross-entropy from logits, a drop-in for
    ``torch.nn.functional.binary_cross_entropy_with_logits``::

        l = pos_weight * t' * softplus(-x) + (1 - t') * softplus(x)

    ``weight`` broadcasts to the element shape; "mean" is ``sum(weight * l) / sum(weight)``.

    >>> round(float(binary_cross_entropy_with_logits(torch.tensor([0.0, 2.0]), torch.tensor([1.0, 0.0]))), 6)
    1.410038
    """
    t, reduction = _elementwise_inputs(input, target, label_smoothing, reduction, "binary_cross_entropy_with_logits")
    cdt = compute_dtype(input.dtype)
    weight = broadcast_weight(weight, input.shape, "weight", dtype=cdt)
    pos_weight = broadcast_weight(pos_weight, input.shape, "pos_weight", dtype=cdt)
    pos_weight = None if pos_weight is None else pos_weight.to(cdt)
    loss = ElementwiseFunction.apply(input, t, pos_weight, "bce_with_logits", None)
    return _reduce_elementwise(loss, weight, reduction, cdt)


def binary_cross_entropy(input, target, weight=None, reduction: str = "mean", *, label_smoothing: float = 0.0,
                         eps: float | None = None):
    """Binary cross-entropy from probabilities, a drop-in for ``torch.nn.functional.binary_cross_entropy``, except
    that probabilities are used as given (PyTorch clamps each log at -100): ``eps`` clips to ``[eps, 1 - eps]``.

    >>> float(binary_cross_entropy(torch.tensor([0.0]), torch.tensor([1.0])))
    inf
    """
    t, reduction = _elementwise_inputs(input, target, label_smoothing, reduction, "binary_cross_entropy")
    check_unit_interval(TORCH, input, "input", "Use binary_cross_entropy_with_logits for logits.")
    cdt = compute_dtype(input.dtype)
    weight = broadcast_weight(weight, input.shape, "weight", dtype=cdt)
    eps = check_eps(eps)
    # NaN stays NaN (clamp would not keep it on every device), as in NumPy's clip.
    x = input if eps is None else torch.where(torch.isnan(input), input, input.clamp(eps, 1 - eps))
    loss = ElementwiseFunction.apply(x, t, None, "bce_with_probs", None)
    return _reduce_elementwise(loss, weight, reduction, cdt)


def sigmoid_focal_loss(input, target, gamma: float = 2.0, alpha=None, reduction: str = "mean", *,
                       weight=None, label_smoothing: float = 0.0):
    """Sigmoid focal loss (torchvision's formula; ``alpha=None`` means no alpha weighting), element-wise::

        l = alpha_t * bce(x, t') * (1 - p_t)**gamma

    ``alpha`` is a number in [0, 1] or a tensor / sequence in [0, 1] broadcasting to the element shape (one alpha
    per class of ``(N, C)`` multi-label logits), as in the NumPy core. The analytic gradient is finite at
    saturation for every ``gamma >= 0``. "mean" as ``binary_cross_entropy_with_logits`` (the plain mean without
    ``weight``, as torchvision).

    >>> round(float(sigmoid_focal_loss(torch.tensor([0.0]), torch.tensor([1.0]), alpha=0.25)), 6)
    0.043322
    """
    t, reduction = _elementwise_inputs(input, target, label_smoothing, reduction, "sigmoid_focal_loss")
    gamma = check_gamma(gamma)
    cdt = compute_dtype(input.dtype)
    weight = broadcast_weight(weight, input.shape, "weight", dtype=cdt)
    if alpha is not None:
        alpha = broadcast_weight(alpha, input.shape, "alpha", dtype=cdt).to(cdt)
        check_unit_interval(TORCH, alpha, "alpha", "alpha weighs positives against negatives.")
    loss = ElementwiseFunction.apply(input, t, alpha, "sigmoid_focal", gamma)
    return _reduce_elementwise(loss, weight, reduction, cdt)


def _check_pair(input, target, reduction: str) -> None:
    check_tensor(input, "input")
    check_tensor(target, "target")
    check_reduction(reduction)
    same_shape(input, target)


def poisson_nll_loss(input, target, log_input: bool = True, full: bool = False, eps: float = 1e-8,
                     reduction: str = "mean"):
    """``torch.nn.functional.poisson_nll_loss``: ``exp(x) - t x`` (log_input) or ``x - t log(x + eps)``, plus
    Stirling's term for ``t > 1`` when ``full``.

    >>> round(float(poisson_nll_loss(torch.tensor([0.0, 1.0]), torch.tensor([1.0, 2.0]))), 6)
    0.859141
    """
    _check_pair(input, target, reduction)
    eps = check_nonnegative(eps, "eps")
    check_nonnegative_values(TORCH, target, "target", "hold non-negative counts")
    cdt = compute_dtype(input.dtype)
    x, t = input.to(cdt), target.to(cdt)
    # A zero count adds 0 to the value even at x = -inf or a zero rate (eps=0): no 0 * inf or 0 / 0, in value or
    # gradient. Its gradient to the target is still the factor, -x (or -log(x + eps)), as PyTorch's: the factor is
    # clamped to the finite range there and detached, so it adds nothing to the gradient to x. The rate is clamped
    # where exp(x) (or x) is already infinite, so an infinite rate gives a loss of +inf and the NumPy gradient
    # (inf, or 1), never inf - inf.
    zero = t == 0
    big = torch.finfo(cdt).max
    if log_input:
        factor = torch.clamp(x, max=math.log(big))
    else:
        check_nonnegative_values(TORCH, x, "input", RATE)
        rate = torch.clamp(x + eps, max=big)
        factor = torch.log(torch.where(zero, torch.ones_like(x), rate))
        at_zero = torch.log(rate.detach())
    at_zero = (x if log_input else at_zero).detach().clamp(min=-big, max=big)
    factor = torch.where(zero, at_zero, factor)
    loss = (torch.exp(x) if log_input else x) - t * factor
    if full:
        safe = torch.where(t > 1, t, torch.ones_like(t))
        stirling = safe * torch.log(safe) - safe + 0.5 * torch.log(2 * torch.pi * safe)
        loss = loss + torch.where(t > 1, stirling, torch.zeros_like(t))
    return _reduce_elementwise(loss, None, reduction, cdt)


def gaussian_nll_loss(input, target, var, full: bool = False, eps: float = 1e-6, reduction: str = "mean"):
    """``torch.nn.functional.gaussian_nll_loss``: ``(log v + (x - t)**2 / v) / 2`` with ``v = max(var, eps)``
    (clamped without blocking the gradient, as PyTorch), plus ``log(2 pi) / 2`` when ``full``. Shapes as PyTorch's
    (``rules.elementwise.gaussian_shapes``); ``var`` may be a Python number.

    >>> float(gaussian_nll_loss(torch.tensor([1.0]), torch.tensor([0.0]), torch.tensor([1.0])))
    0.5
    """
    check_tensor(input, "input")
    check_tensor(target, "target")
    check_reduction(reduction)
    eps = check_nonnegative(eps, "eps")
    if isinstance(var, numbers.Real) and not isinstance(var, bool):  # a Python number, as PyTorch takes it
        var = torch.tensor(float(var), dtype=input.dtype, device=input.device)
    check_tensor(var, "var")
    var = var.reshape(gaussian_shapes(input.shape, target.shape, var.shape))
    check_nonnegative_values(TORCH, var, "var")
    cdt = compute_dtype(input.dtype)
    v = var.to(cdt).clone()
    with torch.no_grad():
        v.clamp_(min=eps)
    loss = 0.5 * (torch.log(v) + (input.to(cdt) - target.to(cdt)) ** 2 / v)
    if full:
        loss = loss + 0.5 * torch.log(torch.tensor(2 * torch.pi, dtype=cdt))
    return _reduce_elementwise(loss, None, reduction, cdt)
