"""Torch inputs: tensors checked, class-dim layouts turned into ``(n, C)`` rows, and results shaped back.

The option checks and their messages are the rules layer's (``crossentropy.rules.options``), shared with NumPy;
this module only handles what is particular to tensors. Value checks read tensors, so they run only eagerly on the
CPU (``TORCH.checkable``): never under ``torch.compile``, never on CUDA, where they would synchronise the host.
"""

from __future__ import annotations

import numbers

import torch

from ..rules.errors import InputTypeError, InputValueError
from ..rules.options import check_class_indices, check_finite_nonnegative, check_unit_interval
from ._xp import TORCH


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """float64 stays float64; float32, float16 and bfloat16 are computed in float32 (docs/semantics.md, 2)."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def loss_dtype(x: torch.Tensor) -> torch.dtype:
    """Losses come back in the input's dtype for float32/64, and in float32 for half and bfloat16."""
    return compute_dtype(x.dtype)


def check_tensor(x, name: str, *, floating: bool = True, integer: bool = False) -> torch.Tensor:
    """``x`` is a tensor: a floating-point one (``floating``), one of class indices (``integer``), or any."""
    if not isinstance(x, torch.Tensor):
        raise InputTypeError(f"{name} must be a torch.Tensor, but got {type(x).__name__}. Wrap it with "
                             f"torch.as_tensor.")
    if integer:
        if x.is_floating_point() or x.is_complex() or x.dtype == torch.bool:
            raise InputTypeError(f"{name} must hold class indices (an integer tensor), but got dtype {x.dtype}.")
    elif floating and not x.is_floating_point():
        raise InputTypeError(f"{name} must be a floating-point tensor, but got dtype {x.dtype}. Convert it with "
                             f"{name}.float().")
    return x


def check_same_dtype(tensors: dict) -> None:
    """Tensors multiplied together (input, weights, bias) must share a dtype: no silent up- or down-cast."""
    named = [(n, t) for n, t in tensors.items() if t is not None]
    first_name, first = named[0]
    for name, t in named[1:]:
        if t.dtype != first.dtype:
            raise InputTypeError(f"{name} has dtype {t.dtype} but {first_name} has dtype {first.dtype}; they are "
                                 f"multiplied together, so they must match. Convert one, e.g. "
                                 f"{name}.to({first_name}.dtype).")


def check_linear_head(input, linear_weight, linear_bias) -> int:
    """``input (..., D)``, ``linear_weight (V, D)`` and ``linear_bias (V,)`` (or None) of one dtype; returns ``V``."""
    check_tensor(input, "input")
    check_tensor(linear_weight, "linear_weight")
    if input.dim() < 1 or linear_weight.dim() != 2 or linear_weight.shape[1] != input.shape[-1]:
        raise InputValueError(f"linear_weight must have shape (V, D) with D = input.shape[-1] = "
                              f"{input.shape[-1] if input.dim() else None}, but got {tuple(linear_weight.shape)} "
                              f"for input {tuple(input.shape)}.")
    vocab = linear_weight.shape[0]
    if linear_bias is not None:
        check_tensor(linear_bias, "linear_bias")
        if linear_bias.shape != (vocab,):
            raise InputValueError(f"linear_bias must have shape ({vocab},), but got {tuple(linear_bias.shape)}.")
    check_same_dtype({"input": input, "linear_weight": linear_weight, "linear_bias": linear_bias})
    return vocab


def check_weight(weight, n_classes: int, name: str = "weight", *, dtype=None, device=None) -> torch.Tensor | None:
    """One non-negative, finite weight per class: a tensor, or a number or sequence (converted)."""
    if weight is None:
        return None
    if not isinstance(weight, torch.Tensor):
        if isinstance(weight, numbers.Real) and not isinstance(weight, bool):
            weight = torch.full((n_classes,), float(weight), dtype=dtype, device=device)
        else:
            try:
                weight = torch.as_tensor(weight, dtype=dtype, device=device)
            except (TypeError, ValueError, RuntimeError):
                raise InputTypeError(f"{name} must be a tensor of one weight per class, a number or a sequence of "
                                     f"numbers, but got {type(weight).__name__}.") from None
    check_tensor(weight, name)
    if tuple(weight.shape) != (n_classes,):
        raise InputValueError(f"{name} must have shape ({n_classes},), one weight per class, but got "
                              f"{tuple(weight.shape)}.")
    check_finite_nonnegative(TORCH, weight, name)
    return weight


def broadcast_weight(w, shape: torch.Size, name: str, *, dtype=None) -> torch.Tensor | None:
    """Element weights broadcasting to ``shape`` (a tensor, or a number or sequence, converted)."""
    if w is None:
        return None
    if not isinstance(w, torch.Tensor):
        try:  # checked as given (float64), as NumPy does, then converted below
            w = torch.as_tensor(w, dtype=torch.float64)
        except (TypeError, ValueError, RuntimeError):
            raise InputTypeError(f"{name} must be a tensor, a number or a sequence of numbers, but got "
                                 f"{type(w).__name__}.") from None
    check_tensor(w, name)
    try:
        fits = torch.broadcast_shapes(w.shape, shape) == shape
    except RuntimeError:
        fits = False
    if not fits:
        raise InputValueError(f"{name} must broadcast to the input's shape {tuple(shape)}, but got "
                              f"{tuple(w.shape)}.")
    check_finite_nonnegative(TORCH, w, name)
    return w if dtype is None else w.to(dtype)


def check_sample_weight(sample_weight, batch_shape: tuple, device) -> torch.Tensor | None:
    """One non-negative, finite weight per target element: a tensor, number or sequence broadcasting to the target's
    batch shape, returned flat (one per row) in float64 on ``device`` (None stays None)."""
    if sample_weight is None:
        return None
    if not isinstance(sample_weight, torch.Tensor):
        try:
            sample_weight = torch.as_tensor(sample_weight, dtype=torch.float64)
        except (TypeError, ValueError, RuntimeError):
            raise InputTypeError(f"sample_weight must be a tensor, a number or a sequence of numbers, but got "
                                 f"{type(sample_weight).__name__}.") from None
    check_tensor(sample_weight, "sample_weight")
    try:
        fits = torch.broadcast_shapes(sample_weight.shape, batch_shape) == torch.Size(batch_shape)
    except RuntimeError:
        fits = False
    if not fits:
        raise InputValueError(f"sample_weight must broadcast to shape {tuple(batch_shape)}, the target's batch shape "
                              f"(one weight per target element), but got shape {tuple(sample_weight.shape)}.")
    check_finite_nonnegative(TORCH, sample_weight, "sample_weight")
    return sample_weight.to(device=device, dtype=torch.float64).expand(batch_shape).reshape(-1)


def class_rows(input, target, ignore_index: int, loss_name: str):
    """Validate a class-dim-1 call (``ignore_index`` is already checked, with the options); return
    ``(rows (n, C), target rows, batch shape, unbatched)``."""
    check_tensor(input, "input")
    check_tensor(target, "target", floating=False)
    if input.dim() == 0:
        raise InputValueError(f"{loss_name}: input must have a class dim: (C,), (N, C) or (N, C, d1, ...), but got "
                              f"a scalar.")
    unbatched = input.dim() == 1
    x = input.unsqueeze(0) if unbatched else input
    n_classes = x.shape[1]
    if n_classes == 0:
        raise InputValueError(f"{loss_name}: input has 0 classes along dim 1; at least one class is needed.")
    t = target.unsqueeze(0) if unbatched else target
    batch = (x.shape[0],) + tuple(x.shape[2:])
    rows = x if x.dim() == 2 else x.movedim(1, -1).reshape(-1, n_classes)  # (N, C): no view, no autograd node
    if target.is_floating_point():
        if t.shape != x.shape:
            raise InputValueError(f"target holds probabilities, so it must have the input's shape "
                                  f"{tuple(input.shape)}, but got {tuple(target.shape)}. Pass class indices as an "
                                  f"integer (long) tensor.")
        check_unit_interval(TORCH, t, "target", "Soft targets are probabilities; pass class indices as integers.")
        return rows, t if t.dim() == 2 else t.movedim(1, -1).reshape(-1, n_classes), batch, unbatched
    if target.dtype in (torch.bool, torch.complex64, torch.complex128):
        raise InputTypeError(f"target must be class indices (an integer tensor) or probabilities (a float tensor), "
                             f"but got dtype {target.dtype}.")
    if tuple(t.shape) != batch:
        raise InputValueError(f"target holds class indices, so it must have the input's shape without dim 1, "
                              f"{batch}, but got {tuple(target.shape)}.")
    t = (t if t.dim() == 1 else t.reshape(-1)).long()
    check_class_indices(TORCH, t, n_classes, ignore_index, " (the class dim is 1)")
    return rows, t, batch, unbatched


def index_target_last_dim(target, input: torch.Tensor, ignore_index: int, n_classes: int | None = None,
                          what: str = "") -> torch.Tensor:
    """Integer targets for an input whose class (vocabulary) dim is the last one; returns them flat, as long
    (``ignore_index`` is already checked, with the options)."""
    check_tensor(target, "target", integer=True)
    if tuple(target.shape) != tuple(input.shape[:-1]):
        raise InputValueError(f"target must have the input's shape without its last dim, "
                              f"{tuple(input.shape[:-1])}, but got {tuple(target.shape)}.")
    t = target.reshape(-1).long()
    if n_classes is not None:
        check_class_indices(TORCH, t, n_classes, ignore_index, what)
    return t


def same_shape(input, target) -> None:
    if target.shape != input.shape:
        raise InputValueError(f"target must have the same shape as input, {tuple(input.shape)}, but got "
                              f"{tuple(target.shape)}.")


def shape_back(loss_rows: torch.Tensor, batch: tuple, unbatched: bool, reduction: str) -> torch.Tensor:
    if reduction != "none":
        return loss_rows
    out = loss_rows.reshape(batch)
    return out.squeeze(0) if unbatched else out
