"""Recycled CPU memory for the large tensors the compiled kernel writes: a gradient of logits, a linear chunk's
logits.

torch's CPU allocator hands every large tensor fresh pages from the system and returns them when the tensor dies,
so each training step faults its gradient in anew. For a 1 GiB float32 gradient that costs more than the
kernel's whole pass (docs/design.md has the figures). So, as torch's caching allocator does on CUDA, a pool keeps
the most recent large buffers and hands one out again once no tensor uses it; ``release_cpu_buffers()`` returns
the idle ones to the system. The buffers are NumPy arrays, so they get NumPy's huge-page policy too.
"""

from __future__ import annotations

import math
import sys
import threading

import numpy as np
import torch

__all__ = ["POOL", "release_cpu_buffers"]


def _references(buffers: list) -> list[int]:
    return [sys.getrefcount(b) for b in buffers]


# what _references reports for an array that only the pool's list holds
_IDLE = _references([np.empty(0, dtype=np.uint8)])[0]


class BufferPool:
    """Buffers of at least ``min_bytes``, at most ``keep`` of them remembered (the most recent). A request takes
    the smallest idle buffer of between one and two times its size, or a new one. Tensors under ``min_bytes``
    come from torch's allocator as usual."""

    def __init__(self, keep: int = 4, min_bytes: int = 1 << 22):
        self.keep, self.min_bytes = keep, min_bytes
        self._buffers: list[np.ndarray] = []
        self._lock = threading.Lock()

    def empty(self, shape, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        """An uninitialised contiguous tensor, as ``torch.empty(shape, dtype=dtype, device=device)``; from the pool
        for large CPU tensors outside ``torch.compile``."""
        nbytes = math.prod(shape) * dtype.itemsize
        if nbytes < self.min_bytes or device.type != "cpu" or torch.compiler.is_compiling():
            return torch.empty(shape, dtype=dtype, device=device)
        with self._lock:
            refs = _references(self._buffers)
            fits = [(b.nbytes, i) for i, b in enumerate(self._buffers)
                    if refs[i] == _IDLE and nbytes <= b.nbytes <= 2 * nbytes]
            if fits:
                buffer = self._buffers[min(fits)[1]]
            else:
                buffer = np.empty(nbytes, dtype=np.uint8)
                self._buffers = [*self._buffers, buffer][-self.keep:]
            raw = torch.from_numpy(buffer[:nbytes])  # the view keeps the buffer referenced while a tensor uses it
        return raw.view(dtype).view(shape)

    def release(self) -> None:
        """Forget every buffer: the idle ones go back to the system now, the others when their tensors die."""
        with self._lock:
            self._buffers = []

    @property
    def held_bytes(self) -> int:
        """Bytes of the buffers the pool remembers, in use or idle."""
        with self._lock:
            return sum(b.nbytes for b in self._buffers)


POOL = BufferPool()


def release_cpu_buffers() -> None:
    """Return the idle CPU buffers that ``crossentropy.torch`` keeps for reuse to the system, as
    ``torch.cuda.empty_cache()`` does for CUDA memory.

    The CPU kernel recycles the memory of its large outputs (a gradient of logits of 4 MiB or more, a linear
    chunk's logits): at most four buffers, the most recent, so an idle process may hold up to four times its
    largest gradient. Call this after training, before work that needs that memory.

    >>> import torch, crossentropy.torch as cet
    >>> x = torch.randn(512, 4096, requires_grad=True)  # 8 MiB: on CPU its gradient comes from the pool
    >>> cet.cross_entropy(x, torch.zeros(512, dtype=torch.long)).backward()
    >>> cet.release_cpu_buffers()  # the gradient keeps its memory; an idle buffer would go back to the system
    >>> bool(torch.isfinite(x.grad).all()), x.grad.shape
    (True, torch.Size([512, 4096]))
    """
    POOL.release()
