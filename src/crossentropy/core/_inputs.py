"""NumPy inputs: array-likes coerced to ndarrays, shapes and distributions checked.

The option checks and their messages, shared with torch, live in the rules layer (``crossentropy.rules.options``);
this module only turns NumPy array-likes into arrays. Public functions validate once, at their entry.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

from ..rules.errors import InputTypeError, InputValueError
from ..rules.options import check_class_indices, check_finite_nonnegative, check_ignore_index, check_unit_interval
from ..rules.xp import NUMPY


def _describe(x: np.ndarray) -> str:
    return f"an array of shape {x.shape} and dtype {x.dtype}"


def float_array(x, name: str) -> np.ndarray:
    """``x`` as a floating ndarray. Integers and booleans become float64; float16/32/64 are kept."""
    try:
        a = np.asarray(x)
    except (ValueError, TypeError) as exc:  # ragged nested lists
        raise InputTypeError(f"{name} must be a numeric array-like; converting it failed ({exc}). "
                        f"Pass a rectangular list or a NumPy array of floats.") from None
    if a.dtype.kind == "f":
        if a.dtype not in (np.float16, np.float32, np.float64):
            return a.astype(np.float64)
        return a
    if a.dtype.kind in "iub":
        return a.astype(np.float64)
    raise InputTypeError(f"{name} must hold real numbers, but got dtype {a.dtype}. "
                    f"Convert it with np.asarray({name}, dtype=float).")


def compute_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype arithmetic runs in, and values are returned in: float16 is computed in float32."""
    return np.dtype(np.float32) if dtype == np.float16 else np.dtype(dtype)


def check_axis(axis, ndim: int, name: str = "axis") -> int:
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise InputTypeError(f"{name} must be an int, but got {type(axis).__name__}. Pass e.g. {name}=-1.")
    if not -ndim <= axis < ndim or ndim == 0:
        raise InputValueError(f"{name}={axis} is out of range for an input with {ndim} dimension(s); "
                         f"pass an axis in [{-ndim}, {ndim - 1}].")
    return int(axis) % ndim


def check_weights(w, name: str, shape: tuple, *, broadcast: bool = False) -> np.ndarray | None:
    """A non-negative, finite weight array of ``shape`` (or broadcastable to it), as float64; None stays None."""
    if w is None:
        return None
    a = float_array(w, name).astype(np.float64, copy=False)
    if broadcast:
        try:
            np.broadcast_shapes(a.shape, shape)
        except ValueError:
            raise InputValueError(f"{name} must broadcast to shape {shape}, but got shape {a.shape}. "
                             f"Give one weight per element, or a shape that broadcasts.") from None
        if np.broadcast_shapes(a.shape, shape) != tuple(shape):
            raise InputValueError(f"{name} of shape {a.shape} would enlarge the loss shape {shape}; "
                             f"give a shape that broadcasts to {shape}.")
    elif a.shape != tuple(shape):
        raise InputValueError(f"{name} must have shape {tuple(shape)}, but got shape {a.shape}.")
    check_finite_nonnegative(NUMPY, a, name)
    return a


def sum_tolerance(dtype: np.dtype) -> float:
    """How far from 1 a distribution may sum: sqrt(eps) of its dtype, as scikit-learn's log_loss uses."""
    return float(np.sqrt(np.finfo(dtype).eps))


def check_distribution(p: np.ndarray, name: str, axis: int, *, normalize: bool) -> np.ndarray:
    """Validate (or, with ``normalize``, rescale) a non-negative distribution along ``axis``."""
    if (p < 0).any():
        raise InputValueError(f"{name} must be non-negative, but its smallest value is {np.nanmin(p)}. "
                         f"Pass probabilities (or counts with normalize=True).")
    if normalize:
        # Divide by the slice's largest value first, so the sum cannot overflow ([1e308, 1e308] is [0.5, 0.5]).
        top = np.max(p, axis=axis, keepdims=True, initial=0)
        if (top == 0).any():
            raise InputValueError(f"{name} has a slice along axis {axis} that sums to 0, which cannot be normalized.")
        if np.isinf(top).any():
            raise InputValueError(f"{name} has an infinite value, which cannot be normalized. Pass finite counts.")
        scaled = p / top
        return (scaled / scaled.sum(axis=axis, keepdims=True, dtype=np.float64)).astype(p.dtype, copy=False)
    total = p.sum(axis=axis, keepdims=True, dtype=np.float64)
    tol = sum_tolerance(p.dtype)
    bad = np.abs(total - 1) > tol
    if bad.any():
        worst = total[bad].flat[0]
        raise InputValueError(f"{name} must sum to 1 along axis {axis} (within {tol:.1e}), but a slice sums to "
                         f"{worst:.8g}. Pass normalize=True to rescale it, or fix the input.")
    return p


def warn_if_not_normalized(p: np.ndarray, name: str, axis: int, *, tol: float | None = None) -> None:
    """scikit-learn's behaviour: rows that do not sum to 1 (within ``tol``, default ``sum_tolerance(p.dtype)``)
    are suspicious but usable."""
    total = p.sum(axis=axis, dtype=np.float64)
    tol = sum_tolerance(p.dtype) if tol is None else tol
    bad = np.abs(total - 1) > tol
    if bad.any():
        warnings.warn(f"{name}: {int(bad.sum())} of {bad.size} rows do not sum to 1 (first sums to "
                      f"{total[bad].flat[0]:.8g}); the loss uses them as given. Normalize them if that is "
                      f"not intended.", UserWarning, stacklevel=3)


def same_shape(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    if a.shape != b.shape:
        raise InputValueError(f"{name_b} must have the same shape as {name_a}, {a.shape}, but got {b.shape}.")


def class_targets(target, logits_shape: Sequence[int], axis: int, ignore_index: int, name: str = "target"):
    """Classify ``target`` as class indices or probabilities for inputs of ``logits_shape``.

    Returns ``("index", int64 array of the batch shape)`` or ``("prob", float array of logits_shape)``.
    """
    ignore_index = check_ignore_index(ignore_index)
    t = np.asarray(target)
    logits_shape = tuple(logits_shape)
    batch_shape = logits_shape[:axis] + logits_shape[axis + 1:]
    n_classes = logits_shape[axis]
    if t.dtype.kind in "iu":
        if t.shape != batch_shape:
            raise InputValueError(f"{name} holds class indices, so it must have the input's shape without the class "
                             f"axis, {batch_shape}, but got shape {t.shape}.")
        t = t.astype(np.int64, copy=False)
        check_class_indices(NUMPY, t, n_classes, ignore_index)
        return "index", t
    if t.dtype.kind == "f":
        if t.shape != logits_shape:
            hint = (" It has the shape of index targets: convert it with target.astype(int)."
                    if t.shape == batch_shape else "")
            raise InputValueError(f"{name} holds floats, so it must be probabilities of the input's shape "
                             f"{logits_shape}, but got shape {t.shape}.{hint}")
        check_unit_interval(NUMPY, t, name, "Soft targets are probabilities; pass class indices as integers.")
        return "prob", t
    raise InputTypeError(f"{name} must be integer class indices or float probabilities, but got dtype {t.dtype}.")


def unit_name(base) -> str:
    """The unit of an information quantity in log ``base``: nats for None (e), bits for 2, hartleys for 10."""
    names = {None: "nats", 2.0: "bits", 10.0: "hartleys"}
    return names[base] if base in names else f"log-base-{base:g} units"
