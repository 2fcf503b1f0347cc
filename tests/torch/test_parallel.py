"""Vocab-parallel cross-entropy: 3 gloo processes on 127.0.0.1 with V=1023 split 300/401/322 equal the
single-process result on every rank (loss, logits-shard, input and weight-shard gradients, ignored targets), also
with infinite logits: a shard row that is all -inf, an all -inf row, +inf on a target, and with per-token sample
weights (parallel_worker.py), on the reference path and on the Triton kernels' shard partials (impl="triton");
FSDP2 and vocabulary-sharded DTensor heads on 2 ranks. One process group of 3 ranks runs every 3-rank case in turn
(``gloo3``: a process start costs seconds, a case milliseconds); each case is still its own test."""

import importlib.util
import os
import socket
import time
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from conftest import tol
from parallel_worker import serve

# Under pytest-xdist (make test) the gloo tests are one group (--dist loadgroup); `once` runs their processes once.
pytestmark = pytest.mark.xdist_group("gloo")

TRITON = importlib.util.find_spec("triton") is not None and os.environ.get("TRITON_INTERPRET") == "1"
TRITON_OPTIONS = [
    {"reduction": "mean", "label_smoothing": 0.1, "z_loss": 1e-3, "impl": "triton"},
    {"reduction": "none", "label_smoothing": 0.1, "z_loss": 0.01, "infinite": True, "impl": "triton"},
]
PLAIN_OPTIONS = [
    {"reduction": "mean"},
    {"reduction": "sum", "label_smoothing": 0.1},
    {"reduction": "none", "label_smoothing": 0.2, "z_loss": 0.01},
    {"reduction": "mean", "label_smoothing": 0.1, "z_loss": 1e-3},
    {"reduction": "mean", "infinite": True},
    {"reduction": "none", "z_loss": 0.01, "infinite": True},
    {"reduction": "none", "label_smoothing": 0.1, "infinite": True},
    {"reduction": "mean", "label_smoothing": 0.1, "weighted": True},
    {"reduction": "none", "z_loss": 0.01, "weighted": True},
]
OPTIONS = [*PLAIN_OPTIONS,  # and the Triton kernels' shard partials (CPU tensors: Triton's interpreter, conftest.py)
           *(pytest.param(o, marks=pytest.mark.skipif(not TRITON, reason="Triton's interpreter is not on"))
             for o in TRITON_OPTIONS)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


WAIT_S = 600
ACCUMULATION = [{}, {"label_smoothing": 0.1, "z_loss": 1e-2}]


def key(options: dict) -> str:
    return "-".join(f"{k}={v}" for k, v in options.items()) or "defaults"


def spawn(world: int, out_dir, jobs: list) -> None:
    """``parallel_worker.serve``: the ``jobs`` ``(key, body, options)`` on one group of ``world`` gloo ranks."""
    mp.start_processes(serve, args=(world, free_port(), str(out_dir), jobs), nprocs=world, join=True,
                       start_method="spawn")


def compare(out_dir, key: str, world: int, n_results: int | None = None) -> None:
    """Every rank's (got, expected) pairs of the job ``key`` agree at their dtype's tier (dtypes equal)."""
    for rank in range(world):
        results = torch.load(out_dir / f"{key}-rank{rank}.pt", weights_only=True)
        assert n_results is None or len(results) == n_results
        for name, (got, expected) in results.items():
            torch.testing.assert_close(got, expected, equal_nan=True, **tol(expected.dtype), msg=f"rank {rank}: {name}")


def once(tmp_path_factory, name: str, make) -> Path:
    """The folder ``name`` after ``make(folder)``, run once per test session: pytest-xdist workers share it (the
    first makes it, the others wait), and a module fixture set up again finds it made."""
    root = tmp_path_factory.getbasetemp()
    root = root.parent if os.environ.get("PYTEST_XDIST_WORKER") else root  # the workers' common folder
    folder = root / name
    try:
        folder.mkdir()
    except FileExistsError:
        deadline = time.monotonic() + WAIT_S
        while not (folder / "done").exists():
            if (folder / "failed").exists() or time.monotonic() > deadline:
                pytest.fail(f"{name} failed on another worker: {(folder / 'failed').read_text()}"
                            if (folder / "failed").exists() else f"{name} took over {WAIT_S} s on another worker")
            time.sleep(0.2)
        return folder
    try:
        make(folder)
    except BaseException as exc:
        (folder / "failed").write_text(repr(exc))
        raise
    (folder / "done").touch()
    return folder


@pytest.fixture(scope="module")
def gloo3(tmp_path_factory):
    """The folder of every 3-rank case's results, from one group of 3 gloo ranks."""
    jobs = [(f"run-{key(o)}", "run", o) for o in PLAIN_OPTIONS + (TRITON_OPTIONS if TRITON else [])]
    jobs += [(f"accumulation-{key(o)}", "run_accumulation", o) for o in ACCUMULATION]
    return once(tmp_path_factory, "gloo3", lambda folder: spawn(3, folder, jobs))


@pytest.mark.parametrize("options", OPTIONS, ids=key)
def test_three_gloo_ranks_equal_single_process(gloo3, options):
    compare(gloo3, f"run-{key(options)}", 3)


@pytest.mark.parametrize("options", ACCUMULATION, ids=key)
def test_micro_batches_on_three_ranks_sum_to_the_single_process_mean_gradient(gloo3, options):
    """Uneven micro-batches on 3 gloo ranks with total_weight(..., group) (parallel_worker.run_accumulation):
    gradients accumulated over micro-batches and summed over ranks equal the single-process "mean" gradient."""
    compare(gloo3, f"accumulation-{key(options)}", 3, n_results=5)


def test_needs_an_initialised_group():
    from crossentropy.torch.parallel import vocab_parallel_cross_entropy

    with pytest.raises(RuntimeError, match=r"needs torch.distributed: call torch.distributed.init_process_group"):
        vocab_parallel_cross_entropy(torch.randn(2, 3), torch.tensor([0, 1]))


def test_fsdp2_and_vocab_sharded_dtensor_heads_on_two_gloo_ranks(tmp_path):
    """linear_cross_entropy and linear_logprobs on 2 gloo ranks (parallel_worker.run_dtensor): a head wrapped by
    FSDP2's fully_shard, read outside its forward (each rank its own tokens), and a Shard(0) vocabulary-sharded
    DTensor head with a replicated DTensor input; values and gradients equal the single-process ones."""
    spawn(2, tmp_path, [("dtensor", "run_dtensor", {})])
    compare(tmp_path, "dtensor", 2, n_results=16)
