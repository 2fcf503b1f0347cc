"""Vocab-parallel cross-entropy: 3 gloo processes on 127.0.0.1 with V=1023 split 300/401/322 equal the
single-process result on every rank (loss, logits-shard, input and weight-shard gradients, ignored targets), also
with infinite logits: a shard row that is all -inf, an all -inf row, +inf on a target, and with per-token sample
weights (parallel_worker.py), on the reference path and on the Triton kernels' shard partials (impl="triton");
FSDP2 and vocabulary-sharded DTensor heads on 2 ranks."""

import importlib.util
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp
from conftest import tol
from parallel_worker import run, run_accumulation, run_dtensor

# Under pytest-xdist (make test) the gloo runs share one worker, so that two 3-rank groups never compete for the cores.
pytestmark = pytest.mark.xdist_group("gloo")

OPTIONS = [
    {"reduction": "mean"},
    {"reduction": "sum", "label_smoothing": 0.1},
    {"reduction": "none", "label_smoothing": 0.2, "z_loss": 0.01},
    {"reduction": "mean", "label_smoothing": 0.1, "z_loss": 1e-3},
    {"reduction": "mean", "infinite": True},
    {"reduction": "none", "z_loss": 0.01, "infinite": True},
    {"reduction": "none", "label_smoothing": 0.1, "infinite": True},
    {"reduction": "mean", "label_smoothing": 0.1, "weighted": True},
    {"reduction": "none", "z_loss": 0.01, "weighted": True},
    # the Triton kernels' shard partials (CPU tensors: Triton's interpreter, set by conftest.py)
    *(pytest.param(o, marks=pytest.mark.skipif(
        importlib.util.find_spec("triton") is None or os.environ.get("TRITON_INTERPRET") != "1",
        reason="Triton's interpreter is not on")) for o in (
        {"reduction": "mean", "label_smoothing": 0.1, "z_loss": 1e-3, "impl": "triton"},
        {"reduction": "none", "label_smoothing": 0.1, "z_loss": 0.01, "infinite": True, "impl": "triton"},
    )),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn_and_compare(worker, world: int, tmp_path, options: dict, n_results: int | None = None) -> None:
    """Run ``worker`` on ``world`` gloo ranks; every rank's (got, expected) pairs agree at the float64 tier."""
    mp.start_processes(worker, args=(world, free_port(), str(tmp_path), options), nprocs=world, join=True,
                       start_method="spawn")
    for rank in range(world):
        results = torch.load(tmp_path / f"rank{rank}.pt", weights_only=True)
        assert n_results is None or len(results) == n_results
        for name, (got, expected) in results.items():
            torch.testing.assert_close(got, expected, equal_nan=True, **tol(torch.float64), msg=f"rank {rank}: {name}")


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()))
def test_three_gloo_ranks_equal_single_process(tmp_path, options):
    spawn_and_compare(run, 3, tmp_path, options)


@pytest.mark.parametrize("options", [{}, {"label_smoothing": 0.1, "z_loss": 1e-2}])
def test_micro_batches_on_three_ranks_sum_to_the_single_process_mean_gradient(tmp_path, options):
    """Uneven micro-batches on 3 gloo ranks with total_weight(..., group) (parallel_worker.run_accumulation):
    gradients accumulated over micro-batches and summed over ranks equal the single-process "mean" gradient."""
    spawn_and_compare(run_accumulation, 3, tmp_path, options, n_results=5)


def test_needs_an_initialised_group():
    from crossentropy.torch.parallel import vocab_parallel_cross_entropy

    with pytest.raises(RuntimeError, match=r"needs torch.distributed: call torch.distributed.init_process_group"):
        vocab_parallel_cross_entropy(torch.randn(2, 3), torch.tensor([0, 1]))


def test_fsdp2_and_vocab_sharded_dtensor_heads_on_two_gloo_ranks(tmp_path):
    """linear_cross_entropy and linear_logprobs on 2 gloo ranks (parallel_worker.run_dtensor): a head wrapped by
    FSDP2's fully_shard, read outside its forward (each rank its own tokens), and a Shard(0) vocabulary-sharded
    DTensor head with a replicated DTensor input; values and gradients equal the single-process ones."""
    spawn_and_compare(run_dtensor, 2, tmp_path, {}, n_results=16)
