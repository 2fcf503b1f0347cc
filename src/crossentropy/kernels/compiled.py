"""The compiled fused row kernel (``_fused.c``), loaded with ctypes, and its Python wrapper.

``softmax_rows`` computes, for every row ``i`` of an ``(n, K)`` array of logits (class axis last and contiguous,
any row stride), the softmax cross-entropy loss with target coefficients in factored form, and optionally the
gradient and per-row statistics, in one pass over memory. With ``zc = softcap tanh(z / softcap)`` (or ``z``),
``m = max_c zc``, ``sh = zc - m``, ``S = sum_c exp(sh)`` and ``lse = m + log S``:

    loss_i = o_i log S - sum_c a_ic sh_ic + z_loss o_i lse_i^2
    g_ic   = r_i (o_i (1 + 2 z_loss lse_i) exp(sh_ic) / S - a_ic) (1 - (zc_ic / softcap)^2)

where ``a_ic = a_y[i] [c == y_i] + u_i w_c`` (index targets) or ``a_ic = s_i w_c (alpha T_ic + beta)``
(probability targets), ``o_i = sum_c a_ic`` and ``r_i = row_scale[i]`` (or ``scale``). Terms with a zero
coefficient are skipped (``0 * inf = 0``); a row with an infinite max uses the limit pattern (``sh = 0`` where
``zc == m``, ``-inf`` elsewhere); NaN in a row makes its gradient NaN, and its loss NaN unless ``o_i = 0`` (an
ignored row costs 0: the masked product; docs/semantics.md). Statistics:
``lse``, ``entropy = lse - sum_c p_c zc_c``, ``p_target = exp(zc_y - lse)`` (0 on rows whose coefficients are
all zero) and ``argmax`` (the first maximum of ``zc``; the first NaN on NaN rows).

float16 and bfloat16 are computed in float32; float32 in float32; float64 in float64. Per-row outputs are float64;
the gradient is written in its own dtype and may be the same memory as ``z``. Nothing user-facing is validated
here (the public entries do that); misuse raises ``RuntimeError``.

``AVAILABLE`` is False when the library was not built. ``PREFERRED`` says whether ``impl="auto"`` picks this
kernel: False under ``CROSSENTROPY_KERNEL=numpy`` (read at import) and inside ``forced_fallback()`` (benchmarks,
tests). ``coefficient_arrays`` is the one mapping of the rules' coefficients to this kernel's arguments.

>>> import numpy as np

from .threads import get_num_threads
>>> z = np.array([[0.0, 0.0], [1.0, -np.inf]])
>>> loss = np.empty(2)
>>> if AVAILABLE:
...     softmax_rows(z, o=np.ones(2), y=np.array([0, 0]), a_y=np.ones(2), loss=loss)
... else:
...     loss[:] = [np.log(2), 0.0]
>>> loss.round(6)
array([0.693147, 0.      ])
"""

from __future__ import annotations

import contextlib
import ctypes
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .threads import get_num_threads

_CODES = {np.dtype(np.float16): 0, np.dtype(np.float32): 2, np.dtype(np.float64): 3}
_BF16 = 1


class _Args(ctypes.Structure):
    _fields_ = [
        ("n", ctypes.c_int64), ("k", ctypes.c_int64),
        ("z", ctypes.c_void_p), ("z_stride", ctypes.c_int64), ("z_type", ctypes.c_int32),
        ("has_softcap", ctypes.c_int32),
        ("o", ctypes.c_void_p), ("y", ctypes.c_void_p), ("a_y", ctypes.c_void_p), ("u", ctypes.c_void_p),
        ("probs", ctypes.c_void_p), ("p_stride", ctypes.c_int64), ("p_type", ctypes.c_int32),
        ("threads", ctypes.c_int32),
        ("s", ctypes.c_void_p), ("alpha", ctypes.c_double), ("beta", ctypes.c_double),
        ("w", ctypes.c_void_p), ("z_loss", ctypes.c_double), ("softcap", ctypes.c_double),
        ("loss", ctypes.c_void_p), ("lse", ctypes.c_void_p),
        ("grad", ctypes.c_void_p), ("g_stride", ctypes.c_int64), ("g_type", ctypes.c_int32),
        ("pad_", ctypes.c_int32),
        ("row_scale", ctypes.c_void_p), ("scale", ctypes.c_double),
        ("entropy", ctypes.c_void_p), ("p_target", ctypes.c_void_p), ("argmax", ctypes.c_void_p),
    ]


def _load() -> ctypes.CDLL | None:
    for path in sorted(Path(__file__).parent.glob("_fused*.so")):
        try:
            lib = ctypes.CDLL(str(path))
        except OSError:
            continue
        lib.ce_softmax_rows.argtypes = [ctypes.POINTER(_Args)]
        lib.ce_softmax_rows.restype = ctypes.c_int
        lib.ce_isa.restype = ctypes.c_char_p
        lib.ce_set_intrinsics.argtypes = [ctypes.c_int]
        lib.ce_f16_convert.argtypes = [ctypes.c_void_p] * 4 + [ctypes.c_int64]
        for name, ctype in (("ce_expf_array", ctypes.c_float), ("ce_exp_array", ctypes.c_double)):
            getattr(lib, name).argtypes = [ctypes.POINTER(ctype), ctypes.POINTER(ctype), ctypes.c_int64]
        return lib
    return None


_lib = _load()
AVAILABLE: bool = _lib is not None
PREFERRED: bool = os.environ.get("CROSSENTROPY_KERNEL", "").lower() != "numpy"
ISA: str = _lib.ce_isa().decode() if _lib is not None else "none"


@contextlib.contextmanager
def forced_fallback() -> Iterator[None]:
    """Inside the block ``PREFERRED`` is False: ``impl="auto"`` takes the reference path (benchmarks, tests)."""
    global PREFERRED
    previous = PREFERRED
    PREFERRED = False
    try:
        yield
    finally:
        PREFERRED = previous


@contextlib.contextmanager
def portable_loops() -> Iterator[None]:
    """Inside the block the kernel runs only its portable loops (no AVX-512 intrinsics pass), to test them."""
    lib = _need_lib()
    lib.ce_set_intrinsics(0)
    try:
        yield
    finally:
        lib.ce_set_intrinsics(1)


def _need_lib() -> ctypes.CDLL:
    if _lib is None:
        raise RuntimeError("the compiled kernel is not loaded (check compiled.AVAILABLE before calling it)")
    return _lib


def _type(a: np.ndarray, name: str, bf16) -> int:
    if name in bf16:
        if a.dtype not in (np.dtype(np.uint16), np.dtype(np.int16)):
            raise RuntimeError(f"{name} is named in bf16 but has dtype {a.dtype}, not 16-bit integer bits")
        return _BF16
    try:
        return _CODES[a.dtype]
    except KeyError:
        raise RuntimeError(f"{name} has dtype {a.dtype}; the kernel takes float16, bfloat16, float32, float64") \
            from None


def _rows(a: np.ndarray, name: str, shape: tuple[int, int]) -> int:
    if a.shape != shape or (shape[1] > 1 and a.strides[1] != a.itemsize) or a.strides[0] < 0:
        raise RuntimeError(f"{name} must have shape {shape} with a contiguous class axis, got {a.shape} "
                           f"strides {a.strides}")
    return a.strides[0]


def _vec(a: np.ndarray | None, name: str, n: int, dtype=np.float64) -> int | None:
    if a is None:
        return None
    if a.dtype != dtype or a.shape != (n,) or not a.flags.c_contiguous:
        raise RuntimeError(f"{name} must be a contiguous ({n},) {np.dtype(dtype)} array, got {a.dtype} {a.shape}")
    return a.ctypes.data


def softmax_rows(z, *, o, y=None, a_y=None, u=None, probs=None, s=None, alpha=1.0, beta=0.0, w=None,
                 z_loss=0.0, softcap=None, loss, lse=None, grad=None, row_scale=None, scale=1.0,
                 entropy=None, p_target=None, argmax=None, threads=None, bf16=()) -> None:
    """Fill ``loss`` (and ``grad``, ``lse``, ``entropy``, ``p_target``, ``argmax`` when given) for the rows of
    ``z``; see the module docstring for the formulas. Index targets pass ``y`` and ``a_y`` (and optionally ``u``),
    probability targets pass ``probs`` and ``s``. ``threads`` defaults to ``threads.get_num_threads()``."""
    lib = _need_lib()
    if z.ndim != 2:
        raise RuntimeError(f"z must be 2-D, got shape {z.shape}")
    n, k = z.shape
    if n == 0:
        return
    if k == 0:
        raise RuntimeError("z has no classes")
    if (y is None) == (probs is None):
        raise RuntimeError("pass exactly one of y (index targets) and probs (probability targets)")
    args = _Args(n=n, k=k, z=z.ctypes.data, z_stride=_rows(z, "z", (n, k)), z_type=_type(z, "z", bf16),
                 o=_vec(o, "o", n), loss=_vec(loss, "loss", n), lse=_vec(lse, "lse", n),
                 w=_vec(w, "w", k), z_loss=float(z_loss), scale=float(scale), row_scale=_vec(row_scale, "row_scale", n),
                 entropy=_vec(entropy, "entropy", n), p_target=_vec(p_target, "p_target", n),
                 argmax=_vec(argmax, "argmax", n, np.int64),
                 threads=max(1, int(get_num_threads() if threads is None else threads)))
    if softcap is not None:
        args.has_softcap, args.softcap = 1, float(softcap)
    if y is not None:
        if a_y is None:
            raise RuntimeError("index targets need a_y")
        args.y, args.a_y, args.u = _vec(y, "y", n, np.int64), _vec(a_y, "a_y", n), _vec(u, "u", n)
    else:
        if s is None or p_target is not None:
            raise RuntimeError("probability targets need s, and have no p_target")
        args.probs, args.p_stride, args.p_type = probs.ctypes.data, _rows(probs, "probs", (n, k)), _type(
            probs, "probs", bf16)
        args.s, args.alpha, args.beta = _vec(s, "s", n), float(alpha), float(beta)
    if grad is not None:
        args.grad, args.g_stride, args.g_type = grad.ctypes.data, _rows(grad, "grad", (n, k)), _type(
            grad, "grad", bf16)
        if not grad.flags.writeable:
            raise RuntimeError("grad is read-only")
    if lib.ce_softmax_rows(ctypes.byref(args)) != 0:
        raise MemoryError(f"the fused kernel could not allocate its per-thread scratch rows ({k} classes)")


def f16_convert(x: np.ndarray, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The kernel's float16 conversions: (bits of float32 ``x`` rounded to float16, float32 of float16 bits ``h``)."""
    lib = _need_lib()
    x = np.ascontiguousarray(x, dtype=np.float32)
    h = np.ascontiguousarray(h, dtype=np.uint16)
    if x.shape != h.shape:
        raise RuntimeError(f"x and h must have one shape, got {x.shape} and {h.shape}")
    bits, back = np.empty(x.shape, np.uint16), np.empty(x.shape, np.float32)
    lib.ce_f16_convert(x.ctypes.data, bits.ctypes.data, h.ctypes.data, back.ctypes.data, x.size)
    return bits, back


def exp(x: np.ndarray) -> np.ndarray:
    """The kernel's vectorised ``exp`` of a contiguous float32 or float64 array (to measure its accuracy)."""
    lib = _need_lib()
    x = np.ascontiguousarray(x)
    out = np.empty_like(x)
    if x.dtype == np.float32:
        fn, ctype = lib.ce_expf_array, ctypes.c_float
    elif x.dtype == np.float64:
        fn, ctype = lib.ce_exp_array, ctypes.c_double
    else:
        raise RuntimeError(f"exp takes float32 or float64, got {x.dtype}")
    fn(x.ctypes.data_as(ctypes.POINTER(ctype)), out.ctypes.data_as(ctypes.POINTER(ctype)), x.size)
    return out


def kernel_rows(a: np.ndarray) -> np.ndarray:
    """``a`` itself when the kernel can read it (class axis contiguous, rows forward), else a contiguous copy."""
    fits = (a.shape[-1] <= 1 or a.strides[-1] == a.itemsize) and a.strides[0] >= 0
    return a if fits else np.ascontiguousarray(a)


def target_logit(xp, z, coef, softcap):
    """Each row's (capped) logit at its index target, as float64, and where some are infinite, the limit rule's
    share of the row's mass at the target, ``[z_y == max] / #max`` (None where none is): read before a gradient
    overwrites ``z``, for ``unweighted_p_target``. The kernels' inputs live on the host, so the test reads it."""
    t = xp.astype(xp.gather(z, coef.y), "float64")
    if softcap is not None:
        return xp.tanh(t / softcap) * softcap, None
    if not xp.any(xp.isinf(t)):
        return t, None
    top = xp.amax(z, keepdims=True)
    ties = xp.sum(xp.astype(z == top, "float64"))
    return t, xp.astype(xp.gather(z, coef.y) == top[:, 0], "float64") / xp.where(ties > 0, ties, 1.0)


def unweighted_p_target(xp, p_target, logit, lse, coef):
    """The kernel reports ``p_target = 0`` also on kept rows whose target carries no weight (a class weight of 0,
    no smoothing); the rules give ``p_y`` there, from the target's logit (``target_logit``): ``exp(z_y - lse)``,
    or the limit rule's share where both are the same infinity (a row of ``-inf``, or ``+inf`` ties), never
    ``exp(inf - inf)`` = NaN."""
    logit, share = logit
    p = xp.exp(logit - lse)
    if share is not None:
        p = xp.where(xp.isinf(logit) & (logit == lse), share, p)
    return xp.where(coef.keep & (coef.o == 0), p, p_target)


def coefficient_arrays(coef, probs=None) -> dict:
    """The rules layer's ``Coefficients`` (of any array namespace whose arrays live on the host) as this kernel's
    keyword arguments: per-row factors as contiguous float64, class indices as int64, the probability targets
    as ``kernel_rows`` of them, or ``probs`` when the caller has its own view of them (torch's bfloat16 bits).

    >>> from crossentropy.rules.options import SoftmaxOptions
    >>> from crossentropy.rules.targets import coefficients
    >>> from crossentropy.rules.xp import NUMPY
    >>> kw = coefficient_arrays(coefficients(NUMPY, np.array([1]), 3, SoftmaxOptions(), dtype=np.float32))
    >>> sorted(kw), kw["a_y"].dtype.name
    (['a_y', 'o', 'u', 'w', 'y'], 'float64')
    """
    host = coef.xp.host

    def f64(a):
        return None if a is None else np.ascontiguousarray(host(a), dtype=np.float64)

    kw = {"o": f64(coef.o), "w": f64(coef.w)}
    if coef.index:
        kw.update(y=np.ascontiguousarray(host(coef.y), dtype=np.int64), a_y=f64(coef.a_y), u=f64(coef.u))
    else:
        alpha, beta = coef.affine
        kw.update(probs=kernel_rows(host(coef.probs)) if probs is None else probs, s=f64(coef.s), alpha=alpha,
                  beta=beta)
    return kw
