"""The array namespace the rules are written against.

The rules layer never imports a backend. Each rule takes ``xp``, an object with the handful of operations below,
and works on NumPy arrays or torch tensors alike. ``NUMPY`` is defined here; the torch namespace lives in
``crossentropy/torch/_xp.py`` (only ``crossentropy.torch`` imports torch).

Why a shim of our own and not the array-API standard's ``array-api-compat``: the rules need in-place updates
(``exp_``, ``mul_``) and a masked product that never evaluates ``0 * inf``, which the standard does not define, and
the shim adds no per-call dispatch (measured in docs/design.md).

Conventions: reductions run over the last axis (the class axis of ``(n, K)`` rows) unless said otherwise;
``checkable(x)`` says whether values of ``x`` may be read on the host (a torch tensor on CUDA, or under
``torch.compile``, may not: value checks are then skipped and nothing synchronises).
"""

from __future__ import annotations

import numpy as np


class NumPyNamespace:
    """The NumPy side of the shim."""

    name = "numpy"
    inf = np.inf

    @staticmethod
    def checkable(x) -> bool:
        return True

    @staticmethod
    def where(cond, a, b):
        return np.where(cond, a, b)

    @staticmethod
    def mul_where(a, x, cond, out=None):
        """``a * x`` where ``cond``, else 0, without evaluating the masked products (no ``0 * inf`` warning);
        into ``out`` when given (it may be ``a`` or ``x``)."""
        a, x = np.asarray(a), np.asarray(x)
        if out is None:
            out = np.zeros(np.broadcast_shapes(a.shape, x.shape, np.shape(cond)), dtype=np.result_type(a, x))
        else:
            np.copyto(out, 0, where=np.logical_not(cond))
        with np.errstate(over="ignore"):  # a product beyond the float range is +-inf, as any float product
            return np.multiply(a, x, out=out, where=cond)

    @staticmethod
    def amax(x, keepdims: bool = False):
        return np.max(x, axis=-1, keepdims=keepdims)

    @staticmethod
    def argmax(x):
        return np.argmax(x, axis=-1)

    @staticmethod
    def sum(x, keepdims: bool = False):
        return np.sum(x, axis=-1, keepdims=keepdims)

    @staticmethod
    def total(x):
        """The sum of every element, accumulated in float64 (a 0-d array)."""
        return np.sum(x, dtype=np.float64)

    @staticmethod
    def gather(x, index):
        """``x[i, index[i]]`` for rows ``x (n, K)`` and ``index (n,)``."""
        return x[np.arange(x.shape[0]), index]

    @staticmethod
    def take(x, index):
        """``x[i, index[i, j]]`` for rows ``x (n, K)`` and ``index (n, k)``: an ``(n, k)`` array."""
        return np.take_along_axis(x, index, axis=-1)

    @staticmethod
    def scatter_(x, index, values):
        """``x[i, index[i, j]] = values[i, j]`` (or the scalar ``values``) in place."""
        np.put_along_axis(x, index, values, axis=-1)
        return x

    @staticmethod
    def concat(arrays):
        """The arrays joined along the last axis."""
        return np.concatenate(arrays, axis=-1)

    @staticmethod
    def scatter_sub_(x, index, values):
        """``x[i, index[i]] -= values[i]`` in place."""
        x[np.arange(x.shape[0]), index] -= values
        return x

    @staticmethod
    def sub(a, b, out=None):
        # inf - inf, which the limit rule replaces; x - max beyond the float range is -inf, whose exp is the 0
        # that the limit rule gives too.
        with np.errstate(invalid="ignore", over="ignore"):
            return np.subtract(a, b, out=out)

    @staticmethod
    def fill_where_(x, mask, value):
        np.copyto(x, value, where=mask)
        return x

    @staticmethod
    def exp_(x):
        return np.exp(x, out=x)

    @staticmethod
    def mul_(x, factor):
        x *= factor
        return x

    @staticmethod
    def clamp_min_(x, low):
        return np.maximum(x, low, out=x)

    @staticmethod
    def sub_(x, value):
        with np.errstate(invalid="ignore"):  # inf - inf: NaN, as in torch
            x -= value
        return x

    @staticmethod
    def exp(x):
        return np.exp(x)

    @staticmethod
    def expm1(x):
        return np.expm1(x)

    @staticmethod
    def log1p(x):
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log1p(x)

    @staticmethod
    def log_softmax(z, out=None):
        """``z - log(sum(exp(z)))`` along the last axis (``rules.limits.log_softmax`` applies the limit rule);
        into ``out`` when given (it may be ``z``)."""
        with np.errstate(over="ignore"):  # -max - max rounds to -inf, as the limit of the exact difference
            s = np.subtract(z, np.max(z, axis=-1, keepdims=True), out=out)
        with np.errstate(divide="ignore"):
            s -= np.log(np.sum(np.exp(s), axis=-1, keepdims=True))
        return s

    @staticmethod
    def logaddexp(a, b):
        """``log(exp(a) + exp(b))`` without overflow (NaN propagates without a warning)."""
        with np.errstate(invalid="ignore"):
            return np.logaddexp(a, b)

    @staticmethod
    def reciprocal(x):
        with np.errstate(divide="ignore", over="ignore"):  # 1 / 0 and 1 / subnormal are +-inf
            return 1 / x

    @staticmethod
    def sigmoid(x):
        """``1 / (1 + exp(-x))`` through ``exp(-|x|)``, so it never overflows."""
        e = np.exp(-np.abs(x))
        return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(np.result_type(x), copy=False)

    @staticmethod
    def softplus(x):
        """``log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|))``."""
        return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))

    @staticmethod
    def tanh(x):
        return np.tanh(x)

    @staticmethod
    def log(x):
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log(x)

    @staticmethod
    def matvec(x, w):
        return x @ w

    @staticmethod
    def row_mass(x, w=None):
        """``sum_c x_ic`` (``sum_c x_ic w_c`` with ``w``) per row, accumulated in float64 whatever ``x``'s dtype."""
        if w is None:
            return np.sum(x, axis=-1, dtype=np.float64)
        return np.einsum("ic,c->i", x, np.asarray(w, np.float64), dtype=np.float64)

    @staticmethod
    def astype(x, dtype):
        return np.asarray(x).astype(dtype, copy=False)

    @staticmethod
    def size(x) -> int:
        return int(np.size(x))

    @staticmethod
    def broadcast_to(x, shape):
        return np.broadcast_to(x, shape)

    @staticmethod
    def is_integer(x) -> bool:
        return np.asarray(x).dtype.kind in "iu"

    @staticmethod
    def isinf(x):
        return np.isinf(x)

    @staticmethod
    def isnan(x):
        return np.isnan(x)

    @staticmethod
    def extrema(x) -> tuple:
        """``(min, max)`` of a non-empty integer array, as Python ints (host read; only where ``checkable``)."""
        return int(x.min()), int(x.max())

    @staticmethod
    def first_true(mask) -> tuple:
        """The index of the first True of ``mask`` (host read; only where ``checkable``)."""
        return tuple(int(i) for i in np.argwhere(mask)[0])

    @staticmethod
    def any(x) -> bool:
        return bool(np.any(x))

    @staticmethod
    def sort(x):
        return np.sort(x, axis=-1)

    @staticmethod
    def host(x) -> np.ndarray:
        """``x`` as a NumPy array on the host (for the compiled kernel; no copy where none is needed)."""
        return np.asarray(x)

    @staticmethod
    def eps(x) -> float:
        """The machine epsilon of ``x``'s float dtype."""
        return float(np.finfo(x.dtype).eps)

    @staticmethod
    def zeros(shape, dtype, like=None):
        return np.zeros(shape, dtype=dtype)

    @staticmethod
    def ones(shape, dtype, like=None):
        return np.ones(shape, dtype=dtype)

    @staticmethod
    def scalar(value, dtype, like=None):
        return np.asarray(value, dtype=dtype)


NUMPY = NumPyNamespace()
