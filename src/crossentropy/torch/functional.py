"""Drop-in replacements for the ``torch.nn.functional`` losses, with this library's semantics (DESIGN.md).

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

import torch

from .._validate import REDUCTIONS
from ..rules.errors import InputTypeError, InputValueError
from ._autograd import (
    CrossEntropyFunction,
    SigmoidFocalFunction,
    SoftmaxFocalFunction,
    compute_dtype,
    reduction_scale,
)


# --------------------------------------------------------------------------------------------- validation
def _check_tensor(x, name: str, *, floating: bool = True) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise InputTypeError(f"{name} must be a torch.Tensor, but got {type(x).__name__}. Wrap it with "
                             f"torch.as_tensor.")
    if floating and not x.is_floating_point():
        raise InputTypeError(f"{name} must be a floating-point tensor, but got dtype {x.dtype}. Convert it with "
                        f"{name}.float().")
    return x


def _check_options(reduction, label_smoothing=0.0, z_loss=0.0, softcap=None) -> None:
    if reduction not in REDUCTIONS:
        raise InputValueError(f"reduction must be one of 'none', 'sum' or 'mean', but got {reduction!r}.")
    if not isinstance(label_smoothing, (int, float)) or not 0.0 <= label_smoothing < 1.0:
        raise InputValueError(f"label_smoothing must be in [0, 1), but got {label_smoothing!r}. Use e.g. 0.1; 0 turns "
                         f"smoothing off.")
    if not isinstance(z_loss, (int, float)) or not z_loss >= 0:
        raise InputValueError(f"z_loss must be a non-negative float (e.g. 1e-4), but got {z_loss!r}.")
    if softcap is not None and (not isinstance(softcap, (int, float)) or not softcap > 0):
        raise InputValueError(f"softcap must be None or a positive float (e.g. 30.0), but got {softcap!r}.")


def _eager() -> bool:
    """Value checks read tensors, so they run only eagerly on the CPU: never under torch.compile, never on CUDA
    (where they would synchronise the host)."""
    return not torch.compiler.is_compiling()


def _checkable(t: torch.Tensor) -> bool:
    return _eager() and t.device.type == "cpu"


def _check_unit_interval(t: torch.Tensor, name: str, hint: str = "") -> None:
    if _checkable(t) and bool(((t < 0) | (t > 1)).any()):
        raise InputValueError(f"{name} must hold probabilities in [0, 1], but its values range from "
                              f"{float(t.min())} to "
                         f"{float(t.max())}.{hint}")


def _check_nonnegative(t: torch.Tensor, name: str, expected: str = "be non-negative") -> None:
    if _checkable(t) and bool((t < 0).any()):
        raise InputValueError(f"{name} must {expected}, but its smallest value is {float(t.min())}.")


def _check_ignore_index(ignore_index) -> None:
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, int):
        raise InputTypeError(f"ignore_index must be an int, but got {type(ignore_index).__name__}.")


def _check_class_indices(t: torch.Tensor, n_classes: int, ignore_index: int, what: str) -> None:
    """Every index in [0, n_classes) or equal to ``ignore_index``."""
    _check_ignore_index(ignore_index)
    if _checkable(t):
        bad = ((t < 0) | (t >= n_classes)) & (t != ignore_index)
        if bool(bad.any()):
            raise InputValueError(f"target has class index {int(t[bad][0])}, outside [0, {n_classes - 1}] for {what} "
                             f"(and not ignore_index={ignore_index}).")


def _index_target_last_dim(target, input: torch.Tensor, ignore_index: int) -> torch.Tensor:
    """Integer targets for an input whose class (vocabulary) dim is the last one; returns them flat, as long."""
    _check_tensor(target, "target", floating=False)
    if target.is_floating_point() or target.dtype == torch.bool:
        raise InputTypeError(f"target must hold class indices (an integer tensor), but got dtype {target.dtype}.")
    if tuple(target.shape) != tuple(input.shape[:-1]):
        raise InputValueError(f"target must have the input's shape without its last dim, {tuple(input.shape[:-1])}, "
                         f"but got {tuple(target.shape)}.")
    _check_ignore_index(ignore_index)
    return target.reshape(-1).long()


def _check_weight(weight, n_classes: int, name: str = "weight") -> torch.Tensor | None:
    if weight is None:
        return None
    _check_tensor(weight, name)
    if weight.shape != (n_classes,):
        raise InputValueError(f"{name} must have shape ({n_classes},), one weight per class, but got "
                         f"{tuple(weight.shape)}.")
    _check_nonnegative(weight, name)
    return weight


def _class_rows(input, target, ignore_index: int, loss_name: str):
    """Validate a class-dim-1 call; return ``(rows (n, C), target rows, batch shape, unbatched)``."""
    _check_tensor(input, "input")
    _check_tensor(target, "target", floating=False)
    if input.dim() == 0:
        raise InputValueError(f"{loss_name}: input must have a class dim: (C,), (N, C) or (N, C, d1, ...), but got a "
                         f"scalar.")
    unbatched = input.dim() == 1
    x = input.unsqueeze(0) if unbatched else input
    n_classes = x.shape[1]
    t = target.unsqueeze(0) if unbatched else target
    batch = (x.shape[0],) + tuple(x.shape[2:])
    rows = x.movedim(1, -1).reshape(-1, n_classes)
    if target.is_floating_point():
        if t.shape != x.shape:
            raise InputValueError(f"target holds probabilities, so it must have the input's shape "
                                  f"{tuple(input.shape)}, "
                             f"but got {tuple(target.shape)}. Pass class indices as an integer (long) tensor.")
        _check_unit_interval(t, "target")
        return rows, t.movedim(1, -1).reshape(-1, n_classes), batch, unbatched
    if target.dtype in (torch.bool, torch.complex64, torch.complex128):
        raise InputTypeError(f"target must be class indices (an integer tensor) or probabilities (a float tensor), "
                        f"but got dtype {target.dtype}.")
    if tuple(t.shape) != batch:
        raise InputValueError(f"target holds class indices, so it must have the input's shape without dim 1, {batch}, "
                         f"but got {tuple(target.shape)}.")
    t = t.reshape(-1).long()
    _check_class_indices(t, n_classes, ignore_index, f"{n_classes} classes (the class dim is 1)")
    return rows, t, batch, unbatched


def _shape_back(loss_rows: torch.Tensor, batch: tuple, unbatched: bool, reduction: str) -> torch.Tensor:
    if reduction != "none":
        return loss_rows
    out = loss_rows.reshape(batch)
    return out.squeeze(0) if unbatched else out


# --------------------------------------------------------------------------------------------- softmax family
def cross_entropy(input, target, weight=None, ignore_index: int = -100, reduction: str = "mean",
                  label_smoothing: float = 0.0, *, z_loss: float = 0.0, softcap: float | None = None,
                  return_lse: bool = False):
    """Cross-entropy of ``softmax(input, dim=1)`` against class indices or probabilities; a drop-in for
    ``torch.nn.functional.cross_entropy``::

        l_i = sum_c w_c t'_ic (lse_i - z_ic) + z_loss * o_i * lse_i**2      o_i = sum_c w_c t'_ic
        "mean" = sum_i l_i / sum_i o_i (0 when every target is ignored)

    with ``z = softcap * tanh(input / softcap)`` when ``softcap`` is set. The gradient is analytic and built in
    float32 for half/bfloat16 inputs. ``return_lse=True`` also returns the (non-differentiable) per-token
    log-sum-exp, in the batch shape.

    >>> x = torch.tensor([[2.3, 2.1, 4.5], [4.2, 3.2, 5.1]], dtype=torch.float64)
    >>> round(float(cross_entropy(x, torch.tensor([1, 2]), weight=torch.tensor([25.0, 25, 100]))), 6)
    0.870484
    """
    rows, t, batch, unbatched = _class_rows(input, target, ignore_index, "cross_entropy")
    _check_options(reduction, label_smoothing, z_loss, softcap)
    weight = _check_weight(weight, rows.shape[1])
    loss, lse = CrossEntropyFunction.apply(rows, t, weight, ignore_index, float(label_smoothing), reduction,
                                           float(z_loss), softcap)
    loss = _shape_back(loss, batch, unbatched, reduction).to(_loss_dtype(input))
    if return_lse:
        return loss, _shape_back(lse, batch, unbatched, "none")
    return loss


def softmax_focal_loss(input, target, gamma: float = 2.0, alpha=None, ignore_index: int = -100,
                       reduction: str = "mean", label_smoothing: float = 0.0):
    """Focal loss on ``softmax(input, dim=1)``, in log space; ``alpha`` (None, float or per-class tensor) acts as
    class weights, "mean" included. Equals ``cross_entropy(..., weight=alpha)`` at ``gamma=0``. The gradient is
    finite at saturation for every ``gamma >= 0``.

    >>> x, y = torch.tensor([[3.0, 0.0, 0.0]]), torch.tensor([0])
    >>> bool(torch.isclose(softmax_focal_loss(x, y, gamma=0.0), cross_entropy(x, y)))
    True
    """
    rows, t, batch, unbatched = _class_rows(input, target, ignore_index, "softmax_focal_loss")
    _check_options(reduction, label_smoothing)
    _check_gamma(gamma)
    if alpha is not None and not isinstance(alpha, torch.Tensor):
        if not isinstance(alpha, (int, float)) or alpha < 0:
            raise InputValueError(f"alpha must be None, a non-negative float or a per-class tensor, but got {alpha!r}.")
        alpha = torch.full((rows.shape[1],), float(alpha), dtype=compute_dtype(rows.dtype), device=rows.device)
    alpha = _check_weight(alpha, rows.shape[1], "alpha")
    loss = SoftmaxFocalFunction.apply(rows, t, alpha, ignore_index, float(label_smoothing), reduction, float(gamma))
    return _shape_back(loss, batch, unbatched, reduction).to(_loss_dtype(input))


def _check_gamma(gamma) -> None:
    if isinstance(gamma, bool) or not isinstance(gamma, (int, float)) or not gamma >= 0:
        raise InputValueError(f"gamma must be a non-negative float (2.0 is the usual focal setting), but "
                              f"got {gamma!r}.")


def _loss_dtype(x: torch.Tensor) -> torch.dtype:
    """Losses come back in the input's dtype for float32/64, and in float32 for half and bfloat16 (DESIGN.md 2)."""
    return compute_dtype(x.dtype)


# --------------------------------------------------------------------------------------------- element-wise family
def _check_pair(input, target, reduction: str, label_smoothing: float = 0.0) -> None:
    """Float ``input`` and ``target`` of one shape, and valid options."""
    _check_tensor(input, "input")
    _check_tensor(target, "target")
    _check_options(reduction, label_smoothing)
    if target.shape != input.shape:
        raise InputValueError(f"target must have the same shape as input, {tuple(input.shape)}, but got "
                         f"{tuple(target.shape)}.")


def _elementwise_inputs(input, target, label_smoothing: float, reduction: str, name: str):
    _check_pair(input, target, reduction, label_smoothing)
    _check_unit_interval(target, f"{name}: target")
    cdt = compute_dtype(input.dtype)
    t = target.to(cdt)
    if label_smoothing:
        t = (1 - label_smoothing) * t + label_smoothing / 2
    return input.to(cdt), t


def _broadcast_weight(w, shape: torch.Size, name: str) -> torch.Tensor | None:
    if w is None:
        return None
    _check_tensor(w, name)
    try:
        if torch.broadcast_shapes(w.shape, shape) != shape:
            raise RuntimeError
    except RuntimeError:
        raise InputValueError(f"{name} must broadcast to the input's shape {tuple(shape)}, but got {tuple(w.shape)}.") \
            from None
    _check_nonnegative(w, name)
    return w


def _reduce_elementwise(loss: torch.Tensor, weight: torch.Tensor | None, reduction: str, dtype) -> torch.Tensor:
    """Semantics 5: "mean" is ``sum(w l) / sum(w)`` (the plain mean without weights), 0 when ``sum(w) == 0``."""
    if weight is None:
        out = loss if reduction == "none" else (loss.sum() if reduction == "sum" else loss.mean())
        return out.to(dtype)
    w = weight.to(loss.dtype).expand_as(loss)
    weighted = torch.where(w == 0, torch.zeros_like(loss), w * loss)
    if reduction == "none":
        return weighted.to(dtype)
    total = weighted.sum()
    return (total if reduction == "sum" else total * reduction_scale(w.sum(), "mean")).to(dtype)


def binary_cross_entropy_with_logits(input, target, weight=None, reduction: str = "mean", pos_weight=None, *,
                                     label_smoothing: float = 0.0):
    """Binary / multi-label cross-entropy from logits, a drop-in for
    ``torch.nn.functional.binary_cross_entropy_with_logits``::

        l = pos_weight * t' * softplus(-x) + (1 - t') * softplus(x)

    ``weight`` broadcasts to the element shape; "mean" is ``sum(weight * l) / sum(weight)``.

    >>> round(float(binary_cross_entropy_with_logits(torch.tensor([0.0, 2.0]), torch.tensor([1.0, 0.0]))), 6)
    1.410038
    """
    x, t = _elementwise_inputs(input, target, label_smoothing, reduction, "binary_cross_entropy_with_logits")
    weight = _broadcast_weight(weight, input.shape, "weight")
    pos = t if pos_weight is None else _broadcast_weight(pos_weight, input.shape, "pos_weight").to(x.dtype) * t
    sp = torch.nn.functional.softplus
    loss = _where_zero(pos, pos * sp(-x)) + _where_zero(1 - t, (1 - t) * sp(x))
    return _reduce_elementwise(loss, weight, reduction, x.dtype)


def _where_zero(coefficient: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """``value`` where ``coefficient != 0``, else exactly 0 (so ``0 * inf`` is 0 and its gradient too)."""
    return torch.where(coefficient == 0, torch.zeros_like(value), value)


def binary_cross_entropy(input, target, weight=None, reduction: str = "mean", *, label_smoothing: float = 0.0,
                         eps: float | None = None):
    """Binary cross-entropy from probabilities, a drop-in for ``torch.nn.functional.binary_cross_entropy``, except
    that probabilities are used as given (PyTorch clamps each log at -100): ``eps`` clips to ``[eps, 1 - eps]``.

    >>> float(binary_cross_entropy(torch.tensor([0.0]), torch.tensor([1.0])))
    inf
    """
    x, t = _elementwise_inputs(input, target, label_smoothing, reduction, "binary_cross_entropy")
    _check_unit_interval(input, "input", " Use binary_cross_entropy_with_logits for logits.")
    weight = _broadcast_weight(weight, input.shape, "weight")
    if eps is not None:
        if not 0 < eps < 0.5:
            raise InputValueError(f"eps must be None (no clipping) or in (0, 0.5), but got {eps}.")
        x = x.clamp(eps, 1 - eps)
    one = torch.ones_like(x)
    log_p = torch.log(torch.where(t > 0, x, one))  # the double where keeps 0 * log 0 and its gradient at 0
    log_q = torch.log1p(-torch.where(t < 1, x, 1 - one))
    loss = -(_where_zero(t, t * log_p) + _where_zero(1 - t, (1 - t) * log_q))
    return _reduce_elementwise(loss, weight, reduction, x.dtype)


def sigmoid_focal_loss(input, target, gamma: float = 2.0, alpha: float | None = None, reduction: str = "mean", *,
                       weight=None, label_smoothing: float = 0.0):
    """Sigmoid focal loss (torchvision's formula; ``alpha=None`` means no alpha weighting), element-wise::

        l = alpha_t * bce(x, t') * (1 - p_t)**gamma

    with an analytic gradient that is finite at saturation for every ``gamma >= 0``. "mean" as
    ``binary_cross_entropy_with_logits`` (the plain mean without ``weight``, as torchvision).

    >>> round(float(sigmoid_focal_loss(torch.tensor([0.0]), torch.tensor([1.0]), alpha=0.25)), 6)
    0.043322
    """
    x, t = _elementwise_inputs(input, target, label_smoothing, reduction, "sigmoid_focal_loss")
    _check_gamma(gamma)
    weight = _broadcast_weight(weight, input.shape, "weight")
    if alpha is None:
        alpha_t = torch.ones((), dtype=x.dtype, device=x.device)
    else:
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 <= alpha <= 1:
            raise InputValueError(f"alpha must be None or a float in [0, 1] (0.25 is usual), but got {alpha!r}.")
        alpha_t = alpha * t + (1 - alpha) * (1 - t)
    loss = SigmoidFocalFunction.apply(input, t, alpha_t, float(gamma))
    return _reduce_elementwise(loss, weight, reduction, x.dtype)


def poisson_nll_loss(input, target, log_input: bool = True, full: bool = False, eps: float = 1e-8,
                     reduction: str = "mean"):
    """``torch.nn.functional.poisson_nll_loss``: ``exp(x) - t x`` (log_input) or ``x - t log(x + eps)``, plus
    Stirling's term for ``t > 1`` when ``full``.

    >>> round(float(poisson_nll_loss(torch.tensor([0.0, 1.0]), torch.tensor([1.0, 2.0]))), 6)
    0.859141
    """
    _check_pair(input, target, reduction)
    _check_nonnegative(target, "target", "hold non-negative counts")
    cdt = compute_dtype(input.dtype)
    x, t = input.to(cdt), target.to(cdt)
    loss = torch.exp(x) - t * x if log_input else x - t * torch.log(x + eps)
    if full:
        safe = torch.where(t > 1, t, torch.ones_like(t))
        stirling = safe * torch.log(safe) - safe + 0.5 * torch.log(2 * torch.pi * safe)
        loss = loss + torch.where(t > 1, stirling, torch.zeros_like(t))
    return _reduce_elementwise(loss, None, reduction, cdt)


def gaussian_nll_loss(input, target, var, full: bool = False, eps: float = 1e-6, reduction: str = "mean"):
    """``torch.nn.functional.gaussian_nll_loss``: ``(log v + (x - t)**2 / v) / 2`` with ``v = max(var, eps)``
    (clamped without blocking the gradient, as PyTorch), plus ``log(2 pi) / 2`` when ``full``.

    >>> float(gaussian_nll_loss(torch.tensor([1.0]), torch.tensor([0.0]), torch.tensor([1.0])))
    0.5
    """
    _check_pair(input, target, reduction)
    _check_tensor(var, "var")
    if var.shape != input.shape:
        if input.dim() and var.shape == input.shape[:-1]:
            var = var.unsqueeze(-1)
        elif not (input.dim() and var.shape == input.shape[:-1] + (1,)) and var.dim() != 0:
            raise InputValueError(f"var must have the input's shape {tuple(input.shape)}, that shape with the last "
                             f"dimension 1 or dropped, or be a scalar, but got {tuple(var.shape)}.")
    _check_nonnegative(var, "var")
    cdt = compute_dtype(input.dtype)
    v = var.to(cdt).clone()
    with torch.no_grad():
        v.clamp_(min=eps)
    loss = 0.5 * (torch.log(v) + (input.to(cdt) - target.to(cdt)) ** 2 / v)
    if full:
        loss = loss + 0.5 * torch.log(torch.tensor(2 * torch.pi, dtype=cdt))
    return _reduce_elementwise(loss, None, reduction, cdt)
