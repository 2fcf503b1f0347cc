"""The recycled CPU buffers (crossentropy/torch/_buffers.py): a buffer goes out again only when no tensor uses it,
recycled memory never leaks old values into a gradient, and the pool stays within its bounds."""

from __future__ import annotations

import threading

import pytest
import torch
import torch.nn.functional as F
from conftest import assert_close
from hypothesis import given
from hypothesis import strategies as st

import crossentropy.torch as cet
from crossentropy.kernels import compiled as fused
from crossentropy.torch._buffers import POOL, BufferPool

CPU = torch.device("cpu")
needs_kernel = pytest.mark.skipif(not fused.AVAILABLE, reason="the pool serves the compiled kernel's outputs")


def big_logits(seed: int, rows: int = 64, classes: int = 16384) -> torch.Tensor:
    """Logits of 4 MiB in float32: large enough to come from the pool."""
    return torch.randn(rows, classes, generator=torch.Generator().manual_seed(seed))


def gradient(loss_fn, x, y, **kw) -> torch.Tensor:
    leaf = x.detach().requires_grad_()
    loss_fn(leaf, y, **kw).backward()
    return leaf.grad


def targets(x: torch.Tensor, seed: int) -> torch.Tensor:
    return torch.randint(0, x.shape[1], (x.shape[0],), generator=torch.Generator().manual_seed(seed))


@needs_kernel
def test_a_freed_gradient_buffer_is_handed_out_again():
    x, y = big_logits(0), targets(big_logits(0), 1)
    first = gradient(cet.cross_entropy, x, y)
    address = first.data_ptr()
    del first
    second = gradient(cet.cross_entropy, x, y)
    assert second.data_ptr() == address
    assert_close(second, gradient(F.cross_entropy, x, y), torch.float32)


@needs_kernel
def test_a_buffer_in_use_is_never_handed_out():
    x = big_logits(2)
    kept = gradient(cet.cross_entropy, x, targets(x, 3))
    snapshot = kept.clone()
    other = gradient(cet.cross_entropy, big_logits(4), targets(x, 5))
    view = kept[::2]  # a view keeps the buffer in use after the tensor itself is gone
    del kept
    third = gradient(cet.cross_entropy, big_logits(6), targets(x, 7))
    assert len({other.data_ptr(), view.data_ptr(), third.data_ptr()}) == 3
    assert_close(view, snapshot[::2], "exact")


@needs_kernel
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float64])
def test_recycled_memory_leaks_no_old_values(dtype):
    """A gradient written into a buffer that held a nonzero gradient is exact, also where it is all zeros (every
    target ignored, or weighted 0)."""
    x = big_logits(8, rows=128).to(dtype)
    y = targets(x, 9)
    weight = torch.zeros(x.shape[1], dtype=dtype)
    for kw, y_case in [({"ignore_index": -100, "reduction": "sum"}, torch.full_like(y, -100)),
                       ({"weight": weight, "reduction": "sum"}, y),
                       ({"label_smoothing": 0.1}, y)]:
        gradient(cet.cross_entropy, x, y)  # fills a buffer, which is then free
        ours = gradient(cet.cross_entropy, x, y_case, **kw)
        assert_close(ours.float(), gradient(F.cross_entropy, x, y_case, **kw).float(), dtype)


@needs_kernel
def test_linear_cross_entropy_chunks_reuse_their_logits_buffers():
    g = torch.Generator().manual_seed(10)
    x, w = torch.randn(64, 32, generator=g), torch.randn(32768, 32, generator=g)
    y = torch.randint(0, 32768, (64,), generator=g)
    before = POOL.held_bytes
    reference = F.cross_entropy(x @ w.T, y)
    for _ in range(3):
        assert_close(cet.linear_cross_entropy(x, w, y, chunk_size=32), reference, torch.float32)
    assert POOL.held_bytes - before <= 2 * 32 * 32768 * 4


@needs_kernel
def test_concurrent_backward_passes_get_their_own_buffers():
    inputs = [(big_logits(20 + i), targets(big_logits(0), 30 + i)) for i in range(4)]
    expected = [gradient(F.cross_entropy, x, y) for x, y in inputs]
    found: dict[int, list] = {}

    def work(i):
        found[i] = [gradient(cet.cross_entropy, *inputs[i]) for _ in range(3)]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(4):
        for grad in found[i]:
            assert_close(grad, expected[i], torch.float32)


def test_release_forgets_every_buffer_and_leaves_live_tensors_valid():
    pool = BufferPool(keep=3, min_bytes=64)
    live = pool.empty((8, 8), torch.float32, CPU)
    live.fill_(2.0)
    pool.empty((8, 8), torch.float32, CPU)
    assert pool.held_bytes == 2 * 256
    pool.release()
    assert pool.held_bytes == 0
    assert_close(live, torch.full((8, 8), 2.0), "exact")
    assert pool.empty((8, 8), torch.float32, CPU).data_ptr() != live.data_ptr()


def test_small_tensors_and_other_devices_bypass_the_pool():
    pool = BufferPool(keep=2, min_bytes=1024)
    small = pool.empty((4, 4), torch.float64, CPU)
    assert small.shape == (4, 4) and small.dtype == torch.float64 and pool.held_bytes == 0
    meta = pool.empty((64, 64), torch.float32, torch.device("meta"))
    assert meta.device.type == "meta" and pool.held_bytes == 0


def test_reuse_takes_a_buffer_of_one_to_two_times_the_request():
    pool = BufferPool(keep=4, min_bytes=16)
    t = pool.empty((32,), torch.float32, CPU)  # 128 bytes
    address = t.data_ptr()
    del t
    assert pool.empty((20,), torch.float32, CPU).data_ptr() == address  # 80 bytes: 128 is within 2x
    assert pool.empty((8,), torch.float32, CPU).data_ptr() != address  # 32 bytes: 128 is more than 2x
    assert pool.empty((40,), torch.float32, CPU).data_ptr() != address  # 160 bytes: too small


@given(st.lists(st.tuples(st.integers(1, 64), st.booleans(), st.sampled_from([torch.float32, torch.bfloat16,
                                                                              torch.float64])),
                min_size=1, max_size=30),
       st.integers(1, 4))
def test_live_tensors_never_share_memory_and_keep_their_values(requests, keep):
    """Property: whatever the sequence of requests and frees, the live tensors' memory does not overlap, each keeps
    the values written into it, and the pool remembers at most ``keep`` buffers."""
    pool = BufferPool(keep=keep, min_bytes=8)
    live: list[tuple[torch.Tensor, float]] = []
    for i, (numel, free_oldest, dtype) in enumerate(requests):
        if free_oldest and live:
            live.pop(0)
        t = pool.empty((numel,), dtype, CPU)
        t.fill_(float(i))
        live.append((t, float(i)))
        spans = sorted((s.data_ptr(), s.data_ptr() + s.numel() * s.element_size()) for s, _ in live)
        assert all(end <= start for (_, end), (start, _) in zip(spans, spans[1:], strict=False))
        for s, value in live:
            assert torch.equal(s, torch.full_like(s, value))
        assert pool.held_bytes <= keep * 64 * 8
