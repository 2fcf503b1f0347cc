"""Softmax cross-entropy on CPU against the memory-bandwidth floor, in one process.

Index targets, float32, mean reduction. Variants, timed in interleaved rounds (medians):
- the fused compiled kernel (kernels/compiled.py): loss+gradient into a separate array, in place (the gradient
  overwrites the logits), and loss only;
- the public entry ``ce.softmax_cross_entropy`` (validation and coefficients included), and the NumPy fallback
  (the same entry with the kernel switched off);
- the torch drop-in ``crossentropy.torch.cross_entropy`` against torch eager ``F.cross_entropy``, forward+backward,
  in float32 and in bfloat16, and torch's forward;
- the floors: np.copyto of the logits on 1 thread and on 2 threads (two halves), and a read of the logits (np.max
  over row halves on 1 and 2 threads).

Each path is printed as a share of its floor (floor time / path time): loss+gradient against the faster copy,
loss-only against the faster read. The CPU model and SIMD flags are read at run time from /proc/cpuinfo.

    python benchmarks/bench_core.py [--quick] [--rounds N] [--size N K]
"""

from __future__ import annotations

import argparse
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from _common import append_csv, cpuinfo, interleaved, vector_flags

import crossentropy as ce
from crossentropy.kernels import compiled as fused


def halves(n: int, parts: int) -> list[slice]:
    cuts = [n * i // parts for i in range(parts + 1)]
    return [slice(cuts[i], cuts[i + 1]) for i in range(parts)]


def variants(x: np.ndarray, y: np.ndarray, threads: int) -> dict:
    import torch
    import torch.nn.functional as F

    n = len(y)
    out, scratch = np.empty_like(x), x.copy()
    ones, loss = np.ones(n), np.empty(n)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    pool = ThreadPoolExecutor(max_workers=2)
    parts = halves(n, 2)

    def kernel(grad=None):
        fused.softmax_rows(x if grad is not scratch else scratch, o=ones, y=y, a_y=ones, loss=loss, grad=grad,
                           scale=1.0 / n, threads=threads)
        return loss.sum() / n

    def fallback(**kw):
        with fused.forced_fallback():
            return ce.softmax_cross_entropy(x, y, **kw)

    import crossentropy.torch as cet

    xt16 = xt.to(torch.bfloat16)

    def fwd_bwd(loss_fn, logits):
        leaf = logits.detach().requires_grad_()
        loss_fn(leaf, yt).backward()
        return leaf.grad

    def copy2():
        list(pool.map(lambda s: np.copyto(out[s], x[s]), parts))

    def read(parts: int):
        return list(pool.map(lambda s: x[s].max(), halves(n, parts)))

    found = {
        "copy 1 thread (floor)": lambda: np.copyto(out, x),
        "copy 2 threads (floor)": copy2,
        "read 1 thread (floor)": lambda: x.max(),
        "read 2 threads (floor)": lambda: read(2),
        "ours loss+grad (public, out)": lambda: ce.softmax_cross_entropy(x, y, return_grad=True, out=out),
        "ours loss (public)": lambda: ce.softmax_cross_entropy(x, y),
        "numpy fallback loss+grad": lambda: fallback(return_grad=True, out=out),
        "numpy fallback loss": lambda: fallback(),
        "crossentropy.torch fwd+bwd": lambda: fwd_bwd(cet.cross_entropy, xt),
        "torch eager fwd+bwd": lambda: fwd_bwd(F.cross_entropy, xt),
        "crossentropy.torch bf16 fwd+bwd": lambda: fwd_bwd(cet.cross_entropy, xt16),
        "torch eager bf16 fwd+bwd": lambda: fwd_bwd(F.cross_entropy, xt16),
        "torch eager fwd": lambda: F.cross_entropy(xt, yt),
    }
    if fused.AVAILABLE:
        found = {"fused loss+grad (out)": lambda: kernel(out), "fused loss+grad (in place)": lambda: kernel(scratch),
                 "fused loss": kernel, **found}
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="(1024, 4000), 3 rounds")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--size", type=int, nargs=2, metavar=("N", "K"), default=(8192, 32000))
    args = parser.parse_args(argv)
    n, k = (1024, 4000) if args.quick else args.size
    rounds = 3 if args.quick else args.rounds
    warnings.filterwarnings("ignore")
    threads = ce.get_num_threads()
    model, _ = cpuinfo()
    print(f"CPU: {model}; SIMD flags: {vector_flags()}")
    print(f"kernel: {'compiled, ' + fused.ISA + ' path' if fused.AVAILABLE else 'not available (NumPy fallback)'}; "
          f"{threads} threads; median of {rounds} interleaved rounds; the machine may be shared with other work")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, k), dtype=np.float32)
    y = rng.integers(0, k, n)
    found = variants(x, y, threads)
    for fn in found.values():  # warm-up: page in every buffer
        fn()
    med = interleaved(found, rounds)
    copy = min(med["copy 1 thread (floor)"], med["copy 2 threads (floor)"])
    read = min(med["read 1 thread (floor)"], med["read 2 threads (floor)"])
    print(f"\n({n}, {k}) float32 index targets, logits {x.nbytes / 2**20:.0f} MiB")
    print(f"  {'variant':28s} {'median s':>9s} {'GB/s':>7s} {'share of floor':>15s}")
    rows = []
    for name, sec in med.items():
        moved = x.nbytes * (2 if ("grad" in name or "copy" in name or "bwd" in name) else 1)
        floor = None if "floor" in name else (copy if ("grad" in name or "bwd" in name) else read)
        share = "" if floor is None else f"{100 * floor / sec:14.0f}%"
        print(f"  {name:28s} {sec:9.4f} {moved / sec / 1e9:7.1f} {share:>15s}")
        rows.append({"n": n, "k": k, "variant": name, "median_s": f"{sec:.6f}", "threads": threads,
                     "rounds": rounds, "share_of_floor": "" if floor is None else f"{floor / sec:.3f}",
                     "isa": fused.ISA})
    if fused.AVAILABLE:
        lg, lo = med["fused loss+grad (out)"], med["fused loss"]
        print(f"\n  fused loss+grad: {100 * copy / lg:.0f}% of copy bandwidth (target >= 50%);  "
              f"fused loss: {100 * read / lo:.0f}% of read bandwidth (target >= 50%)")
        print(f"  vs NumPy fallback: loss+grad {med['numpy fallback loss+grad'] / lg:.2f}x faster, "
              f"loss {med['numpy fallback loss'] / lo:.2f}x faster;  vs torch eager: fwd+bwd "
              f"{med['torch eager fwd+bwd'] / lg:.2f}x, fwd {med['torch eager fwd'] / lo:.2f}x")
    ours, theirs = med["crossentropy.torch fwd+bwd"], med["torch eager fwd+bwd"]
    ours16, theirs16 = med["crossentropy.torch bf16 fwd+bwd"], med["torch eager bf16 fwd+bwd"]
    print(f"  public entry: loss+grad {100 * copy / med['ours loss+grad (public, out)']:.0f}% of copy bandwidth, "
          f"loss {100 * read / med['ours loss (public)']:.0f}% of read bandwidth")
    print(f"  torch drop-in vs F.cross_entropy fwd+bwd: float32 {theirs / ours:.2f}x faster (target >= 3x), "
          f"bfloat16 {theirs16 / ours16:.2f}x faster (target >= 1x)")
    print(f"appended {len(rows)} rows to {append_csv('bench_core', rows)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
