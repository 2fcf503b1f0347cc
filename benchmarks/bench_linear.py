"""Linear + cross-entropy forward+backward for a language-model head: naive (full logits), PyTorch's native chunked
F.linear_cross_entropy, and crossentropy.torch.linear_cross_entropy.

Each variant runs in its own process (so peak RSS is its own); the processes are interleaved over rounds and the
median time and peak extra RSS (above the inputs) are reported with ratios.

    python benchmarks/bench_linear.py [--n 4096] [--d 1024] [--vocab 32768] [--rounds 2] [--quick]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

from _common import append_csv, rss_bytes

VARIANTS = ["naive", "torch native chunked", "ours chunked"]


def child(variant: str, n: int, d: int, vocab: int, runs: int) -> None:
    import torch
    import torch.nn.functional as F

    from crossentropy.torch import linear_cross_entropy

    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, d, generator=g).requires_grad_()
    w = (torch.randn(vocab, d, generator=g) * d**-0.5).requires_grad_()
    y = torch.randint(0, vocab, (n,), generator=g)
    fn = {
        "naive": lambda: F.cross_entropy(x @ w.T, y),
        "torch native chunked": lambda: F.linear_cross_entropy(x, w, y, options=torch.nn.LinearCrossEntropyOptions()),
        "ours chunked": lambda: linear_cross_entropy(x, w, y),
    }[variant]
    base = rss_bytes()
    times, loss = [], None
    for _ in range(runs + 1):  # the first run is a warm-up
        x.grad = w.grad = None
        start = time.perf_counter()
        loss = fn()
        loss.backward()
        times.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"variant": variant, "median_s": statistics.median(times[1:]), "peak_extra": peak - base,
                      "loss": float(loss.detach())}))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4096)
    parser.add_argument("--d", type=int, default=1024)
    parser.add_argument("--vocab", type=int, default=32768)
    parser.add_argument("--rounds", type=int, default=2, help="processes per variant, interleaved")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per process, after a warm-up")
    parser.add_argument("--quick", action="store_true", help="N=512, D=256, V=8192, 1 round of 2 runs")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.d, args.vocab, args.rounds, args.runs = 512, 256, 8192, 1, 2
    if args.child:
        child(args.child, args.n, args.d, args.vocab, args.runs)
        return 0
    results: dict[str, list[dict]] = {v: [] for v in VARIANTS}
    for _ in range(args.rounds):
        for variant in VARIANTS:
            out = subprocess.run([sys.executable, __file__, "--child", variant, "--n", str(args.n), "--d", str(args.d),
                                  "--vocab", str(args.vocab), "--runs", str(args.runs)],
                                 capture_output=True, text=True, check=True)
            results[variant].append(json.loads(out.stdout.strip().splitlines()[-1]))
    logits_mib = args.n * args.vocab * 4 / 2**20
    print(f"linear + cross-entropy fwd+bwd, float32, N={args.n} D={args.d} V={args.vocab} "
          f"(full logits {logits_mib:.0f} MiB); median over {args.rounds} processes x {args.runs} runs")
    med = {v: statistics.median(r["median_s"] for r in rs) for v, rs in results.items()}
    mem = {v: statistics.median(r["peak_extra"] for r in rs) for v, rs in results.items()}
    print(f"  {'variant':22s} {'median s':>9s} {'vs naive':>9s} {'peak extra MiB':>15s} {'vs naive':>9s} {'loss':>10s}")
    rows = []
    for v in VARIANTS:
        print(f"  {v:22s} {med[v]:9.3f} {med[v] / med['naive']:8.2f}x {mem[v] / 2**20:15.0f} "
              f"{mem[v] / mem['naive']:8.2f}x {results[v][0]['loss']:10.6f}")
        rows.append({"n": args.n, "d": args.d, "vocab": args.vocab, "variant": v, "median_s": f"{med[v]:.4f}",
                     "time_vs_naive": f"{med[v] / med['naive']:.3f}", "peak_extra_bytes": int(mem[v]),
                     "mem_vs_naive": f"{mem[v] / mem['naive']:.3f}", "rounds": args.rounds, "runs": args.runs})
    ours, native = "ours chunked", "torch native chunked"
    print(f"  ours / torch native: time {med[ours] / med[native]:.2f}x, memory {mem[ours] / mem[native]:.2f}x")
    print(f"appended {len(rows)} rows to {append_csv('bench_linear', rows)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
