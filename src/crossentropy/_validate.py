"""Every argument check and error message of the NumPy API.

Public functions validate once, at their entry, through these helpers. Each error names the argument, says what
was expected and what came, and how to fix it. Nothing here uses ``assert``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

from .rules.errors import InputTypeError, InputValueError

REDUCTIONS = ("none", "sum", "mean")


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


def check_reduction(reduction) -> str:
    if reduction not in REDUCTIONS:
        raise InputValueError(f"reduction must be one of 'none', 'sum' or 'mean', but got {reduction!r}.")
    return reduction


def check_label_smoothing(value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise InputTypeError(f"label_smoothing must be a float in [0, 1), but got {type(value).__name__}.")
    if not 0.0 <= float(value) < 1.0:
        raise InputValueError(f"label_smoothing must be in [0, 1), but got {value}. "
                         f"Use e.g. label_smoothing=0.1; 0 turns smoothing off.")
    return float(value)


def check_nonnegative_scalar(value, name: str, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise InputTypeError(f"{name} must be a real number, but got {type(value).__name__}.")
    v = float(value)
    if not np.isfinite(v) or v < 0 or (positive and v == 0):
        kind = "a positive" if positive else "a non-negative"
        raise InputValueError(f"{name} must be {kind} finite number, but got {value}.")
    return v


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
    if np.isnan(a).any() or np.isinf(a).any():
        raise InputValueError(f"{name} must be finite, but it contains NaN or inf.")
    if (a < 0).any():
        raise InputValueError(f"{name} must be non-negative, but its smallest value is {a.min()}. "
                         f"Weights scale losses; use 0 to drop an entry.")
    return a


def check_unit_interval(x: np.ndarray, name: str, hint: str = "") -> None:
    """Raise unless every non-NaN value of ``x`` lies in [0, 1]."""
    if x.size == 0 or np.isnan(x).all():
        return
    lo, hi = np.nanmin(x), np.nanmax(x)
    if lo < 0 or hi > 1:
        raise InputValueError(f"{name} must hold probabilities in [0, 1], but its values range from {lo} to {hi}."
                         + (f" {hint}" if hint else ""))


def sum_tolerance(dtype: np.dtype) -> float:
    """How far from 1 a distribution may sum: sqrt(eps) of its dtype, as scikit-learn's log_loss uses."""
    return float(np.sqrt(np.finfo(dtype).eps))


def check_distribution(p: np.ndarray, name: str, axis: int, *, normalize: bool) -> np.ndarray:
    """Validate (or, with ``normalize``, rescale) a non-negative distribution along ``axis``."""
    if (p < 0).any():
        raise InputValueError(f"{name} must be non-negative, but its smallest value is {np.nanmin(p)}. "
                         f"Pass probabilities (or counts with normalize=True).")
    total = p.sum(axis=axis, keepdims=True, dtype=np.float64)
    if normalize:
        if (total == 0).any():
            raise InputValueError(f"{name} has a slice along axis {axis} that sums to 0, which cannot be normalized.")
        return (p / total).astype(p.dtype, copy=False)
    tol = sum_tolerance(p.dtype)
    bad = np.abs(total - 1) > tol
    if bad.any():
        worst = total[bad].flat[0]
        raise InputValueError(f"{name} must sum to 1 along axis {axis} (within {tol:.1e}), but a slice sums to "
                         f"{worst:.8g}. Pass normalize=True to rescale it, or fix the input.")
    return p


def warn_if_not_normalized(p: np.ndarray, name: str, axis: int) -> None:
    """scikit-learn's behaviour: rows that do not sum to 1 are suspicious but usable."""
    total = p.sum(axis=axis, dtype=np.float64)
    tol = sum_tolerance(p.dtype)
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
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, (int, np.integer)):
        raise InputTypeError(f"ignore_index must be an int, but got {type(ignore_index).__name__}.")
    t = np.asarray(target)
    logits_shape = tuple(logits_shape)
    batch_shape = logits_shape[:axis] + logits_shape[axis + 1:]
    n_classes = logits_shape[axis]
    if t.dtype.kind in "iu":
        if t.shape != batch_shape:
            raise InputValueError(f"{name} holds class indices, so it must have the input's shape without the class "
                             f"axis, {batch_shape}, but got shape {t.shape}.")
        t = t.astype(np.int64, copy=False)
        bad = ((t < 0) | (t >= n_classes)) & (t != ignore_index)
        if bad.any():
            pos = tuple(int(i) for i in np.argwhere(bad)[0])
            raise InputValueError(f"{name} has class index {t[pos]} at position {pos}, outside [0, {n_classes - 1}] "
                             f"for {n_classes} classes (and not ignore_index={ignore_index}). Check the labels, "
                             f"or the class axis.")
        return "index", t
    if t.dtype.kind == "f":
        if t.shape != logits_shape:
            hint = (" It has the shape of index targets: convert it with target.astype(int)."
                    if t.shape == batch_shape else "")
            raise InputValueError(f"{name} holds floats, so it must be probabilities of the input's shape "
                             f"{logits_shape}, but got shape {t.shape}.{hint}")
        check_unit_interval(t, name, "Soft targets are probabilities; pass class indices as integers.")
        return "prob", t
    raise InputTypeError(f"{name} must be integer class indices or float probabilities, but got dtype {t.dtype}.")


def unit_name(base) -> str:
    """The unit of an information quantity in log ``base``: nats for None (e), bits for 2, hartleys for 10."""
    names = {None: "nats", 2.0: "bits", 10.0: "hartleys"}
    return names[base] if base in names else f"log-base-{base:g} units"
