"""softmax_cross_entropy loss+gradient and loss-only against the alternatives a user would pick, in one process.

Variants: this library (loss+grad into out=, and loss-only), torch eager fwd+bwd and forward, torch.compile'd
fwd+bwd, a naive NumPy implementation, and np.copyto of the logits as the memory-bandwidth floor. The median of
interleaved rounds is reported with ratios, and peak extra memory (RSS above the inputs) per variant.

    python benchmarks/bench_core.py [--quick] [--rounds N] [--no-compile]
"""

from __future__ import annotations

import argparse
import sys
import warnings

import numpy as np
from _common import PeakRSS, append_csv, interleaved

import crossentropy as ce

SIZES = [(64, 10), (1024, 1000), (4096, 8192), (8192, 32000)]


def naive_numpy(x, y):
    p = np.exp(x - x.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    loss = -np.log(p[np.arange(len(y)), y]).mean()
    p[np.arange(len(y)), y] -= 1
    p /= len(y)
    return loss, p


def variants(x, y, compile_it: bool):
    import torch
    import torch.nn.functional as F

    out = np.empty_like(x)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def torch_fwd_bwd(fn):
        leaf = xt.detach().requires_grad_()
        fn(leaf, yt).backward()
        return leaf.grad

    found = {
        "ours loss+grad": lambda: ce.softmax_cross_entropy(x, y, return_grad=True, out=out),
        "ours loss": lambda: ce.softmax_cross_entropy(x, y),
        "torch eager fwd+bwd": lambda: torch_fwd_bwd(F.cross_entropy),
        "torch eager fwd": lambda: F.cross_entropy(xt, yt),
        "naive numpy loss+grad": lambda: naive_numpy(x, y),
        "np.copyto (floor)": lambda: np.copyto(out, x),
    }
    if compile_it:
        compiled = torch.compile(F.cross_entropy, dynamic=False)
        found["torch.compile fwd+bwd"] = lambda: torch_fwd_bwd(compiled)
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes only, 3 rounds, no torch.compile")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile (it compiles for ~40 s)")
    args = parser.parse_args(argv)
    sizes = SIZES[:2] if args.quick else SIZES
    rounds = 3 if args.quick else args.rounds
    compile_it = not (args.quick or args.no_compile)
    warnings.filterwarnings("ignore")
    rng = np.random.default_rng(0)
    rows = []
    print(f"softmax_cross_entropy, float32, {ce.get_num_threads()} threads, median of {rounds} interleaved rounds")
    for n, k in sizes:
        x = rng.standard_normal((n, k), dtype=np.float32)
        y = rng.integers(0, k, n)
        found = variants(x, y, compile_it)
        for fn in found.values():  # warm-up (and compile)
            fn()
        medians = interleaved(found, rounds)
        peaks = {}
        for name, fn in found.items():
            with PeakRSS() as peak:
                fn()
            peaks[name] = peak.extra
        base = medians["ours loss+grad"]
        print(f"\n({n}, {k})  logits {x.nbytes / 2**20:.1f} MiB")
        print(f"  {'variant':24s} {'median s':>10s} {'vs ours l+g':>12s} {'peak extra MiB':>15s} {'% of logits':>12s}")
        for name, sec in medians.items():
            print(f"  {name:24s} {sec:10.4f} {sec / base:11.2f}x {peaks[name] / 2**20:15.1f} "
                  f"{100 * peaks[name] / x.nbytes:11.1f}%")
            rows.append({"n": n, "k": k, "variant": name, "median_s": f"{sec:.6f}",
                         "ratio_to_ours_loss_grad": f"{sec / base:.3f}", "peak_extra_bytes": peaks[name],
                         "threads": ce.get_num_threads(), "rounds": rounds})
        m = medians
        print(f"  torch eager fwd+bwd / ours loss+grad = {m['torch eager fwd+bwd'] / base:.2f}x;  "
              f"torch eager fwd / ours loss = {m['torch eager fwd'] / m['ours loss']:.2f}x"
              + (f";  torch.compile fwd+bwd / ours = {m['torch.compile fwd+bwd'] / base:.2f}x"
                 if "torch.compile fwd+bwd" in m else "")
              + f";  ours loss+grad / copy floor = {base / m['np.copyto (floor)']:.2f}x")
    path = append_csv("bench_core", rows)
    print(f"\nappended {len(rows)} rows to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
