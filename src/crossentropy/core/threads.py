"""Threads for the NumPy kernels: the blocked row loop that spreads rows over them (how many: ``kernels/threads.py``).

Rows of a 2-D ``(n, K)`` array are processed in cache-sized blocks. Each block runs a handful of NumPy ufuncs
(which release the GIL) on data that stays in L2, so one pass over memory reads the logits and, when a gradient is
wanted, writes it straight into its destination. Threads take contiguous row ranges. Small inputs run as a single
block on the calling thread: the "simple path" is this same code with ``block_rows=n, threads=1``.

The thread count (``kernels.threads.get_num_threads``) is the one the compiled kernel uses too.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..kernels.threads import get_num_threads

BLOCK_BYTES = 1 << 20  # one block of the compute buffer: fits in a 1-2 MiB L2 with the logits streaming past
SMALL_ELEMENTS = 1 << 16  # below this, pool overhead outweighs the work

_lock = threading.Lock()
_pool: dict[int, ThreadPoolExecutor] = {}


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
