"""Vocab-parallel cross-entropy: 3 gloo processes on 127.0.0.1 with V=1023 split 300/401/322 equal the
single-process result on every rank (loss, logits-shard, input and weight-shard gradients, ignored targets), also
with infinite logits: a shard row that is all -inf, an all -inf row, +inf on a target (parallel_worker.py)."""

import socket

import pytest
import torch
import torch.multiprocessing as mp
from conftest import tol
from parallel_worker import run, run_accumulation

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
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()))
def test_three_gloo_ranks_equal_single_process(tmp_path, options):
    mp.start_processes(run, args=(3, free_port(), str(tmp_path), options), nprocs=3, join=True,
                       start_method="spawn")
    for rank in range(3):
        results = torch.load(tmp_path / f"rank{rank}.pt", weights_only=True)
        for name, (got, expected) in results.items():
            torch.testing.assert_close(got, expected, equal_nan=True, **tol(torch.float64), msg=f"rank {rank}: {name}")


@pytest.mark.parametrize("options", [{}, {"label_smoothing": 0.1, "z_loss": 1e-2}])
def test_micro_batches_on_three_ranks_sum_to_the_single_process_mean_gradient(tmp_path, options):
    """Uneven micro-batches on 3 gloo ranks with total_weight(..., group) (parallel_worker.run_accumulation):
    gradients accumulated over micro-batches and summed over ranks equal the single-process "mean" gradient."""
    mp.start_processes(run_accumulation, args=(3, free_port(), str(tmp_path), options), nprocs=3, join=True,
                       start_method="spawn")
    for rank in range(3):
        results = torch.load(tmp_path / f"rank{rank}.pt", weights_only=True)
        assert len(results) == 5
        for name, (got, expected) in results.items():
            torch.testing.assert_close(got, expected, **tol(torch.float64), msg=f"rank {rank}: {name}")


def test_needs_an_initialised_group():
    from crossentropy.torch.parallel import vocab_parallel_cross_entropy

    with pytest.raises(RuntimeError, match=r"needs torch.distributed: call torch.distributed.init_process_group"):
        vocab_parallel_cross_entropy(torch.randn(2, 3), torch.tensor([0, 1]))
