"""The blocked, multi-threaded loss+gradient path used by classification.py.

Rows of a 2-D ``(n, K)`` array are processed in cache-sized blocks. Each block runs a handful of NumPy ufuncs
(which release the GIL) on data that stays in L2, so one pass over memory reads the logits and, when a gradient is
wanted, writes it straight into its destination. Threads take contiguous row ranges. Small inputs run as a single
block on the calling thread: the "simple path" is this same code with ``block_rows=n, threads=1``.

Per row ``i`` a loss is described by its target coefficients ``a_ic = s_i w_c t'_ic`` (DESIGN.md, semantics 4) and
their total ``o_i = sum_c a_ic``; softmax cross-entropy is ``l_i = sum_c a_ic (lse_i - z_ic)`` with gradient
``o_i softmax(z_i) - a_i``.

The thread count defaults to the cores this process may use; ``CROSSENTROPY_NUM_THREADS``, ``set_num_threads`` and
the ``num_threads`` context manager override it.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from ..rules.errors import InputValueError

BLOCK_BYTES = 1 << 20  # one block of the compute buffer: fits in a 1-2 MiB L2 with the logits streaming past
SMALL_ELEMENTS = 1 << 16  # below this, pool overhead outweighs the work

_lock = threading.Lock()
_config = {"threads": None}
_pool: dict[int, ThreadPoolExecutor] = {}


def _default_threads() -> int:
    env = os.environ.get("CROSSENTROPY_NUM_THREADS")
    if env:
        try:
            n = int(env)
        except ValueError:
            n = 0
        if n < 1:
            raise InputValueError(f"CROSSENTROPY_NUM_THREADS must be a positive integer, but is {env!r}.")
        return n
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def get_num_threads() -> int:
    """The number of threads the blocked kernels use."""
    return _config["threads"] or _default_threads()


def set_num_threads(n: int | None) -> None:
    """Use ``n`` threads (``None`` restores the default: ``CROSSENTROPY_NUM_THREADS`` or the available cores)."""
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise InputValueError(f"num_threads must be a positive int or None, but got {n!r}.")
    _config["threads"] = n


@contextlib.contextmanager
def num_threads(n: int) -> Iterator[None]:
    """Context manager: ``with ce.num_threads(1): ...`` runs the kernels on ``n`` threads inside the block."""
    previous = _config["threads"]
    set_num_threads(n)
    try:
        yield
    finally:
        _config["threads"] = previous


def _executor(threads: int) -> ThreadPoolExecutor:
    with _lock:
        if threads not in _pool:
            _pool[threads] = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="crossentropy")
        return _pool[threads]


def plan(n: int, k: int, itemsize: int) -> tuple[int, int]:
    """``(block_rows, threads)`` for an ``(n, k)`` problem."""
    if n * k <= SMALL_ELEMENTS:
        return max(n, 1), 1
    block_rows = max(1, BLOCK_BYTES // (k * max(itemsize, 4)))
    threads = max(1, min(get_num_threads(), -(-n // block_rows)))
    return block_rows, threads


def run_rows(n: int, block_rows: int, threads: int, body: Callable, make_buffer: Callable) -> np.ndarray:
    """Call ``body(r0, r1, buffer)`` on row blocks of ``[0, n)``, each thread with its own buffer, and return the
    concatenated per-row losses ``body`` gives back."""
    losses = np.empty(n, dtype=np.float64)

    def work(lo: int, hi: int) -> None:
        buffer = make_buffer()
        for r0 in range(lo, hi, block_rows):
            r1 = min(r0 + block_rows, hi)
            losses[r0:r1] = body(r0, r1, buffer)

    if threads <= 1 or n <= block_rows:
        work(0, n)
        return losses
    per = -(-n // threads)
    per = -(-per // block_rows) * block_rows  # whole blocks per thread
    ranges = [(lo, min(lo + per, n)) for lo in range(0, n, per)]
    for future in [_executor(threads).submit(work, lo, hi) for lo, hi in ranges]:
        future.result()
    return losses


@dataclass
class Coefficients:
    """Per-row target coefficients ``a_ic = s_i w_c t'_ic`` in factored form.

    Index targets: ``a_ic = a_y[i] [c == y_i] + u[i] w_c``. Probability targets: ``a_ic = s_i w_c ((1-e) T_ic + e/K)``.
    ``o`` holds ``sum_c a_ic`` in float64.
    """

    o: np.ndarray
    w: np.ndarray | None
    y: np.ndarray | None = None
    a_y: np.ndarray | None = None
    u: np.ndarray | None = None
    probs: np.ndarray | None = None
    s: np.ndarray | None = None
    smoothing: float = 0.0

    def dense(self, r0: int, r1: int, k: int, dtype: np.dtype) -> np.ndarray:
        """The coefficient block ``a[r0:r1]`` as an ``(r1 - r0, k)`` array."""
        if self.probs is not None:
            a = self.probs[r0:r1].astype(dtype, copy=True)
            if self.smoothing:
                a *= 1 - self.smoothing
                a += self.smoothing / k
            a *= self.s[r0:r1, None]
            if self.w is not None:
                a *= self.w
            return a
        n = r1 - r0
        a = np.zeros((n, k), dtype=dtype)
        if self.u is not None:
            a += self.u[r0:r1, None] * (self.w if self.w is not None else 1.0)
        a[np.arange(n), self.y[r0:r1]] += self.a_y[r0:r1]
        return a


def _shift_rows(src: np.ndarray, dst: np.ndarray) -> None:
    """``dst = src - max(src)`` row-wise (in place when ``dst is src``); rows with an infinite max get the limit
    pattern 0 at the max and -inf elsewhere (see stable.py)."""
    m = src.max(axis=1, keepdims=True)
    inf_rows = np.flatnonzero(np.isinf(m[:, 0]))
    if not inf_rows.size:
        np.subtract(src, m, out=dst)
        return
    limit = np.where(src[inf_rows] == m[inf_rows], 0.0, -np.inf)
    with np.errstate(invalid="ignore"):
        np.subtract(src, m, out=dst)
    dst[inf_rows] = limit


def _weighted_sum(a: np.ndarray, x) -> np.ndarray:
    """``a * x`` with ``0 * x = 0`` even where ``x`` is infinite (a zero target on a -inf logit costs nothing):
    the products where ``a == 0`` are never computed."""
    a = np.asarray(a)
    x = np.asarray(x)
    out = np.zeros(np.broadcast_shapes(a.shape, x.shape), dtype=np.result_type(a, x))
    return np.multiply(a, x, out=out, where=a != 0)


def softmax_xent_block(z: np.ndarray, r0: int, r1: int, coef: Coefficients, scale: float,
                       grad: np.ndarray | None, buffer: np.ndarray) -> np.ndarray:
    """Loss of rows ``r0:r1`` of ``z``; with ``grad`` given, ``scale * (o softmax(z) - a)`` is written there.

    ``grad`` may be ``z`` itself: every read of the logits happens before the block is overwritten.
    """
    n, k = r1 - r0, z.shape[1]
    cdt = buffer.dtype
    zb = z[r0:r1]
    direct = grad is not None and grad.dtype == cdt  # write the gradient in place, else via the buffer
    g = grad[r0:r1] if direct else buffer[:n]
    if zb.dtype != cdt:
        np.copyto(g, zb, casting="unsafe")
        zb = g
    _shift_rows(zb, g)  # g = z - max(z)

    rows = np.arange(n)
    if coef.probs is None:
        a_y = coef.a_y[r0:r1].astype(cdt)
        y = coef.y[r0:r1]
        linear = _weighted_sum(a_y, g[rows, y])
        if coef.u is not None:
            u = coef.u[r0:r1].astype(cdt)
            linear += _weighted_sum(u, g @ coef.w.astype(cdt) if coef.w is not None else g.sum(axis=1))
        a = None
    else:
        a = coef.dense(r0, r1, k, cdt)
        linear = _weighted_sum(a, g).sum(axis=1)

    np.exp(g, out=g)
    total = g.sum(axis=1)
    o = coef.o[r0:r1].astype(cdt)
    loss = o * np.log(total) - linear

    if grad is not None:
        g *= (scale * o / total)[:, None]
        if a is not None:
            a *= scale
            g -= a
        else:
            g[rows, y] -= scale * a_y
            if coef.u is not None:
                g -= (scale * u)[:, None] * (coef.w.astype(cdt) if coef.w is not None else 1.0)
        if not direct:
            np.copyto(grad[r0:r1], g, casting="unsafe")
    return loss
