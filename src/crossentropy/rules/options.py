"""Every option check and its message, the same for every backend.

Scalar options (``reduction``, ``label_smoothing``, ``z_loss``, ``softcap``, ``gamma``, ``eps``, ``ignore_index``,
``total_weight``, ``chunk_size``, ``temperature``, ``beta``) are plain Python values and are checked here in full.
Array values (weights, class indices, probabilities) are checked through the array namespace ``xp``; where their
values cannot be read on the host (``xp.checkable`` is False: CUDA, ``torch.compile``) the value checks are skipped
so that nothing synchronises. Each message names the argument, says what was expected and what came, and how to
fix it.
"""

from __future__ import annotations

import dataclasses
import math
import numbers

from ..constants import DIVERGENCES, IGNORE_INDEX, IMPLS, REDUCTIONS
from .errors import InputTypeError, InputValueError


def _real(value, name: str, expected: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InputTypeError(f"{name} must be {expected}, but got {type(value).__name__}.")
    try:
        return float(value)
    except OverflowError:  # an int beyond float64's range (10**400)
        raise InputValueError(f"{name} must be {expected}, but got an int of {len(str(abs(int(value))))} digits, "
                              f"beyond the float range (about 1.8e308).") from None


def _integer(value, name: str, expected: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InputTypeError(f"{name} must be {expected}, but got {type(value).__name__} {value!r}.")
    return int(value)


def check_choice(value, name: str, allowed: tuple) -> str:
    """One of the names in ``allowed``."""
    if not isinstance(value, str) or value not in allowed:
        names = ", ".join(repr(r) for r in allowed[:-1]) + f" or {allowed[-1]!r}"
        raise InputValueError(f"{name} must be one of {names}, but got {value!r}.")
    return value


def check_reduction(reduction, allowed: tuple = REDUCTIONS) -> str:
    return check_choice(reduction, "reduction", allowed)


def check_label_smoothing(value) -> float:
    v = _real(value, "label_smoothing", "a float in [0, 1)")
    if not 0.0 <= v < 1.0:
        raise InputValueError(f"label_smoothing must be in [0, 1), but got {value}. Use e.g. label_smoothing=0.1; "
                              f"0 turns smoothing off.")
    return v


def check_nonnegative(value, name: str, *, example: str = "") -> float:
    """A finite real ``>= 0`` (``z_loss``, ``gamma``, a scalar ``alpha``...)."""
    v = _real(value, name, "a non-negative finite number")
    if not math.isfinite(v) or v < 0:
        hint = f" Use e.g. {name}={example}." if example else ""
        raise InputValueError(f"{name} must be a non-negative finite number, but got {value}.{hint}")
    return v


def check_positive(value, name: str, *, example: str = "", or_none: str = "") -> float:
    """A finite real ``> 0`` (``softcap``, ``temperature``...); ``or_none`` says what None means, where allowed."""
    expected = (f"None ({or_none}) or " if or_none else "") + "a positive finite number"
    v = _real(value, name, expected)
    if not math.isfinite(v) or v <= 0:
        hint = f" Use e.g. {name}={example}." if example else ""
        raise InputValueError(f"{name} must be {expected}, but got {value}.{hint}")
    return v


def check_z_loss(value) -> float:
    return check_nonnegative(value, "z_loss", example="1e-4")


def check_softcap(value) -> float | None:
    return None if value is None else check_positive(value, "softcap", example="30.0", or_none="no cap")


def check_gamma(value) -> float:
    return check_nonnegative(value, "gamma", example="2.0")


def check_eps(value) -> float | None:
    """The optional probability clip: None (off) or a float in (0, 0.5)."""
    if value is None:
        return None
    v = _real(value, "eps", "None or a float in (0, 0.5)")
    if not 0 < v < 0.5:
        raise InputValueError(f"eps must be None (no clipping) or in (0, 0.5), but got {value}. Use e.g. "
                              f"eps=1e-7, or None to use probabilities as given.")
    return v


def check_open_unit(value, name: str, *, example: str = "0.5") -> float:
    """A float strictly inside (0, 1) (the JSD ``beta``)."""
    v = _real(value, name, "a float in (0, 1)")
    if not 0 < v < 1:
        raise InputValueError(f"{name} must be in (0, 1), but got {value}. Use e.g. {name}={example}.")
    return v


def check_ignore_index(value) -> int:
    return _integer(value, "ignore_index", f"an int (e.g. {IGNORE_INDEX})")


def check_positive_int(value, name: str, *, allow_none: bool = True) -> int | None:
    """A positive int, or None where ``allow_none`` (``chunk_size``, thread counts)."""
    if value is None and allow_none:
        return None
    expected = "a positive int" + (" or None" if allow_none else "")
    v = _integer(value, name, expected)
    if v < 1:
        raise InputValueError(f"{name} must be {expected}, but got {value}.")
    return v


def check_total_weight(xp, total_weight, reduction: str):
    """``total_weight`` goes with ``reduction="mean"`` only; a number must be finite and non-negative."""
    if total_weight is None:
        return None
    if reduction != "mean":
        raise InputValueError(f"total_weight sets the denominator of reduction='mean', but reduction is "
                              f"{reduction!r}. Drop total_weight, or use reduction='mean'.")
    if isinstance(total_weight, numbers.Real):  # a bool is refused there as not a number
        return check_nonnegative(total_weight, "total_weight")
    check_finite_nonnegative(xp, total_weight, "total_weight")
    if tuple(total_weight.shape) != ():
        raise InputValueError(f"total_weight must be a scalar (a number or a 0-d array), but got shape "
                              f"{tuple(total_weight.shape)}. Compute it with total_weight(targets).")
    return total_weight


def check_index_stats(index_targets: bool) -> None:
    """``return_stats`` needs class-index targets."""
    if not index_targets:
        raise InputValueError("return_stats=True needs class-index targets (p_target and correct are about one "
                              "target class), but target holds probabilities. Pass class indices, or drop "
                              "return_stats.")


# --------------------------------------------------------------------------------------------- array values
def check_finite_nonnegative(xp, a, name: str) -> None:
    """Weights: every value finite and ``>= 0`` (read only where ``xp.checkable``)."""
    if not xp.checkable(a):
        return
    if xp.any(xp.isnan(a) | xp.isinf(a)):
        raise InputValueError(f"{name} must be finite, but it contains NaN or inf. Weights scale losses; fix or "
                              f"drop those entries.")
    if xp.any(a < 0):
        raise InputValueError(f"{name} must be non-negative, but its smallest value is {float(a.min())}. Weights "
                              f"scale losses; use 0 to drop an entry.")


def check_weights_fit(xp, o, largest: float, dtype_name: str, names: str = "class_weight and sample_weight") -> None:
    """The per-row weights ``o_i = s_i sum_c w_c t'_ic`` of a "sum" / "none" loss (or a "mean" with
    ``total_weight``) fit in the compute dtype: a weight that rounds to inf would turn a zero loss into NaN.
    (NaN, from NaN soft targets, passes and propagates.)"""
    if xp.checkable(o) and xp.any(o > largest):
        raise InputValueError(f"{names} give a row a weight beyond the largest {dtype_name} ({largest:g}), the dtype "
                              f"the loss is computed in. Scale the weights down, or use reduction='mean' without "
                              f"total_weight, which divides them by their largest value.")


RATE = "be a non-negative rate when log_input=False (or pass log-rates with log_input=True)"


def check_nonnegative_values(xp, a, name: str, expected: str = "be non-negative") -> None:
    """Every value ``>= 0`` (counts, variances, rates); NaN passes and propagates."""
    if xp.checkable(a) and xp.any(a < 0):
        raise InputValueError(f"{name} must {expected}, but its smallest value is {float(a.min())}.")


def check_class_indices(xp, t, n_classes: int, ignore_index: int, where: str = "") -> None:
    """Every index in ``[0, n_classes)`` or equal to ``ignore_index``."""
    if not xp.checkable(t) or not xp.size(t):
        return
    low, high = xp.extrema(t)
    if low >= 0 and high < n_classes:  # one pass over the targets in the common case
        return
    bad = ((t < 0) | (t >= n_classes)) & (t != ignore_index)
    if xp.any(bad):
        pos = xp.first_true(bad)
        index = int(t[pos])
        if index < 0:  # said without the class count, which may be unknown (total_weight without weights)
            raise InputValueError(f"target has the negative class index {index} at position {pos}{where}, and it is "
                                  f"not ignore_index={ignore_index}. Class indices count from 0; mark the targets "
                                  f"to skip with ignore_index, or pass ignore_index={index}.")
        raise InputValueError(f"target has class index {index} at position {pos}, outside [0, {n_classes - 1}] "
                              f"for {n_classes} classes{where} (and not ignore_index={ignore_index}). Check the "
                              f"labels, or the class axis.")


def check_unit_interval(xp, x, name: str, hint: str = "") -> None:
    """Every non-NaN value of ``x`` in [0, 1]."""
    if not xp.checkable(x):
        return
    outside = (x < 0) | (x > 1)
    if xp.any(outside):
        values = x[~xp.isnan(x)]
        raise InputValueError(f"{name} must hold probabilities in [0, 1], but its values range from "
                              f"{float(values.min())} to {float(values.max())}." + (f" {hint}" if hint else ""))


# --------------------------------------------------------------------------------------------- options objects
def check_impl(value) -> str:
    """The kernel switch: one of ``IMPLS`` (whether that kernel can run an input is the dispatch's question)."""
    return check_choice(value, "impl", IMPLS)


def check_flag(value, name: str) -> bool:
    if not isinstance(value, bool):
        raise InputTypeError(f"{name} must be True or False, but got {type(value).__name__} {value!r}.")
    return value


class _Checked:
    """A frozen options object whose fields are checked, and replaced by their checked values, when it is made.

    ``of(**fields)`` returns the same object for the same (hashable) fields without checking them again: the
    public entries call it on every call, so a repeated call costs a dictionary lookup.
    """

    def __post_init__(self):
        for name, value in self._checked().items():
            object.__setattr__(self, name, value)

    def _checked(self) -> dict:
        raise NotImplementedError

    @classmethod
    def of(cls, **fields):
        key = (cls, *((name, type(value), value) for name, value in fields.items()))
        try:
            options = _BUILT.get(key)
        except TypeError:  # an unhashable field: build it uncached (its check raises the message)
            return cls(**fields)
        if options is None:
            if len(_BUILT) >= _BUILT_MAX:
                _BUILT.clear()
            options = _BUILT[key] = cls(**fields)
        return options

    def normalize(self, total_weight) -> bool:
        """Whether the coefficients are normalised: "mean" without ``total_weight`` (rules/targets.py)."""
        return self.reduction == "mean" and total_weight is None


_BUILT: dict = {}  # (class, (name, type, value)...) -> checked options object
_BUILT_MAX = 1024


@dataclasses.dataclass(frozen=True)
class SoftmaxOptions(_Checked):
    """The scalar options of the softmax cross-entropy family, under their public names, checked once.

    Built at the public entry (``cross_entropy``, ``linear_cross_entropy``, ``vocab_parallel_cross_entropy``,
    ``softmax_cross_entropy``, the modules' ``__init__``) and passed whole to the coefficients, the autograd
    Functions, the chunk loops and the kernels. ``chunk_size`` is the chunked linear losses' (None elsewhere).

    >>> SoftmaxOptions.of(label_smoothing=0.1).label_smoothing
    0.1
    >>> SoftmaxOptions(reduction="avg")
    Traceback (most recent call last):
    ...
    crossentropy.rules.errors.InputValueError: reduction must be one of 'none', 'sum' or 'mean', but got 'avg'.
    """

    reduction: str = "mean"
    label_smoothing: float = 0.0
    ignore_index: int = IGNORE_INDEX
    z_loss: float = 0.0
    softcap: float | None = None
    return_stats: bool = False
    chunk_size: int | None = None
    impl: str = "auto"

    def _checked(self) -> dict:
        return {"reduction": check_reduction(self.reduction),
                "label_smoothing": check_label_smoothing(self.label_smoothing),
                "ignore_index": check_ignore_index(self.ignore_index), "z_loss": check_z_loss(self.z_loss),
                "softcap": check_softcap(self.softcap), "return_stats": check_flag(self.return_stats, "return_stats"),
                "chunk_size": check_positive_int(self.chunk_size, "chunk_size"), "impl": check_impl(self.impl)}


@dataclasses.dataclass(frozen=True)
class FocalOptions(_Checked):
    """The scalar options of the softmax focal loss (``alpha`` is an array: it goes beside, as class weights).

    >>> FocalOptions.of(gamma=0.0).gamma
    0.0
    """

    gamma: float = 2.0
    reduction: str = "mean"
    label_smoothing: float = 0.0
    ignore_index: int = IGNORE_INDEX
    impl: str = "auto"

    def _checked(self) -> dict:
        return {"gamma": check_gamma(self.gamma), "reduction": check_reduction(self.reduction),
                "label_smoothing": check_label_smoothing(self.label_smoothing),
                "ignore_index": check_ignore_index(self.ignore_index), "impl": check_impl(self.impl)}


@dataclasses.dataclass(frozen=True)
class DistillationOptions(_Checked):
    """The options of the distillation losses: a name of ``DIVERGENCES``, the JSD mixture weight ``beta`` in
    (0, 1) (checked for every divergence), a positive finite ``temperature``; ``chunk_size`` for the linear heads.

    >>> DistillationOptions.of(divergence="jsd", temperature=2).temperature
    2.0
    """

    divergence: str = "forward_kl"
    beta: float = 0.5
    temperature: float = 1.0
    ignore_index: int = IGNORE_INDEX
    reduction: str = "mean"
    chunk_size: int | None = None
    impl: str = "auto"

    def _checked(self) -> dict:
        return {"divergence": check_choice(self.divergence, "divergence", DIVERGENCES),
                "beta": check_open_unit(self.beta, "beta"),
                "temperature": check_positive(self.temperature, "temperature", example="2.0"),
                "ignore_index": check_ignore_index(self.ignore_index), "reduction": check_reduction(self.reduction),
                "chunk_size": check_positive_int(self.chunk_size, "chunk_size"), "impl": check_impl(self.impl)}


@dataclasses.dataclass(frozen=True)
class LogprobOptions(_Checked):
    """The options of ``linear_logprobs``: a positive finite sampling ``temperature``, the ``softcap`` applied
    before it, ``ignore_index``, ``return_entropy`` and ``chunk_size`` (None: the entry picks one).

    >>> LogprobOptions.of(temperature=0.7, return_entropy=True).temperature
    0.7
    """

    temperature: float = 1.0
    softcap: float | None = None
    ignore_index: int = IGNORE_INDEX
    return_entropy: bool = False
    chunk_size: int | None = None
    impl: str = "auto"

    def _checked(self) -> dict:
        return {"temperature": check_positive(self.temperature, "temperature", example="0.7"),
                "softcap": check_softcap(self.softcap), "ignore_index": check_ignore_index(self.ignore_index),
                "return_entropy": check_flag(self.return_entropy, "return_entropy"),
                "chunk_size": check_positive_int(self.chunk_size, "chunk_size"), "impl": check_impl(self.impl)}
