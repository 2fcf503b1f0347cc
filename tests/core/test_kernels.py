"""The NumPy fallback's blocked multi-threaded path agrees with its simple path (one block, one thread) for every
option, across block boundaries and thread counts; the compiled kernel agrees with the fallback on the same option
grid (infinite and NaN rows, odd sizes, thread counts); the thread-count controls work; neither path allocates a
full-size array."""

import os
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest
from conftest import assert_close
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import crossentropy as ce
from crossentropy.core import threads as _kernels
from crossentropy.kernels import compiled as fused


def _run(x, target, block_bytes, threads, **opts):
    """The NumPy fallback; ``block_bytes=None`` forces its simple path (one block, one thread)."""
    saved = _kernels.BLOCK_BYTES, _kernels.SMALL_ELEMENTS
    if block_bytes is None:
        _kernels.SMALL_ELEMENTS = 1 << 62
    else:
        _kernels.BLOCK_BYTES, _kernels.SMALL_ELEMENTS = block_bytes, 0
    try:
        with ce.num_threads(threads), fused.forced_fallback():
            return ce.softmax_cross_entropy(x, target, return_grad=True, **opts)
    finally:
        _kernels.BLOCK_BYTES, _kernels.SMALL_ELEMENTS = saved


@st.composite
def cases(draw):
    n = draw(st.integers(1, 37))
    k = draw(st.sampled_from([1, 2, 3, 7, 64]))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    x = draw(arrays(dtype, (n, k), elements=st.floats(-30, 30, width=32)))
    if draw(st.booleans()):
        target = draw(arrays(np.int64, n, elements=st.integers(0, k - 1)))
        target[::5] = -100
    else:
        target = ce.softmax(draw(arrays(np.float64, (n, k), elements=st.floats(-3, 3))))
    opts = {"class_weight": draw(st.none() | st.just(np.linspace(0.5, 2, k))),
            "sample_weight": draw(st.none() | st.just(np.linspace(0, 1, n))),
            "label_smoothing": draw(st.sampled_from([0.0, 0.3])),
            "reduction": draw(st.sampled_from(["none", "sum", "mean"]))}
    return x, target, opts


@given(cases(), st.integers(1, 3), st.integers(1, 4))
def test_blocked_threaded_equals_simple(case, rows_per_block, threads):
    x, target, opts = case
    simple = _run(x, target, None, 1, **opts)
    block_bytes = rows_per_block * x.shape[1] * max(x.itemsize, 4)  # a few rows per block: many block boundaries
    fast = _run(x, target, block_bytes, threads, **opts)
    assert_close(fast[0], simple[0], x.dtype)
    assert_close(fast[1], simple[1], x.dtype)


@pytest.mark.skipif(not fused.AVAILABLE, reason="the compiled kernel is not built (or CROSSENTROPY_KERNEL=numpy)")
@given(cases(), st.integers(1, 4), st.sampled_from(["finite", "inf", "nan"]))
def test_compiled_kernel_equals_the_fallback(case, threads, special):
    x, target, opts = case
    if special != "finite":
        x = x.copy()
        x[0, 0] = {"inf": np.inf, "nan": np.nan}[special]
        x[-1] = -np.inf
    fallback = _run(x, target, None, 1, **opts)
    with ce.num_threads(threads):
        compiled = ce.softmax_cross_entropy(x, target, return_grad=True, **opts)
    assert_close(compiled[0], fallback[0], x.dtype)
    assert_close(compiled[1], fallback[1], x.dtype)


@pytest.mark.parametrize("shape", [(1, 50_000), (40_000, 2), (257, 1031)])
def test_real_sizes_agree_and_use_the_pool(shape):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape, dtype=np.float32) * 4
    y = rng.integers(0, shape[1], shape[0])
    assert _kernels.plan(*shape, 4) != (shape[0], 1) or shape[0] == 1  # the fast path is taken
    loss, grad = ce.softmax_cross_entropy(x, y, return_grad=True, label_smoothing=0.1)
    ref_loss, ref_grad = ce.softmax_cross_entropy(x.astype(np.float64), y, return_grad=True, label_smoothing=0.1)
    assert_close(loss, ref_loss, np.float32)
    assert_close(grad, ref_grad, np.float32)


def test_float16_goes_through_the_buffer():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((300, 500)).astype(np.float16)
    y = rng.integers(0, 500, 300)
    fast = _run(x, y, 3 * 500 * 4, 2)
    simple = _run(x, y, None, 1)
    assert fast[1].dtype == np.float16 and fast[0].dtype == np.float32
    assert_close(fast[0], simple[0], np.float16)
    assert_close(fast[1], simple[1], np.float16)


def test_thread_controls():
    default = ce.get_num_threads()
    with ce.num_threads(3):
        assert ce.get_num_threads() == 3
    assert ce.get_num_threads() == default
    ce.set_num_threads(1)
    assert ce.get_num_threads() == 1
    ce.set_num_threads(None)
    assert ce.get_num_threads() == default
    with pytest.raises(ValueError, match=r"num_threads must be a positive int or None, but got 0"):
        ce.set_num_threads(0)
    code = "import crossentropy as ce; print(ce.get_num_threads())"
    env = {**os.environ, "CROSSENTROPY_NUM_THREADS": "5"}
    assert subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True).stdout.strip() == "5"
    env["CROSSENTROPY_NUM_THREADS"] = "many"
    err = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True).stderr
    assert "CROSSENTROPY_NUM_THREADS must be a positive integer, but is 'many'" in err


def test_small_inputs_stay_on_the_simple_path():
    assert _kernels.plan(64, 10, 4) == (64, 1)
    block_rows, threads = _kernels.plan(8192, 32000, 4)
    assert block_rows * 32000 * 4 <= _kernels.BLOCK_BYTES and threads == min(ce.get_num_threads(), 8192)


def test_no_full_size_temporary():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4096, 8192), dtype=np.float32)  # 128 MiB; the overhead is one block buffer per thread
    y = rng.integers(0, 8192, 4096)
    out = np.empty_like(x)
    for kwargs in ({}, {"return_grad": True, "out": out}, {"return_grad": True, "out": x, "label_smoothing": 0.1}):
        tracemalloc.start()
        ce.softmax_cross_entropy(x, y, **kwargs)
        with fused.forced_fallback():
            ce.softmax_cross_entropy(x, y, **kwargs)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert peak < 0.05 * x.nbytes, (kwargs.keys(), peak)
        assert peak <= ce.get_num_threads() * _kernels.BLOCK_BYTES + (1 << 20), (kwargs.keys(), peak)
