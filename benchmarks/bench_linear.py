"""Linear + cross-entropy for a language-model head: naive (full logits), PyTorch's native chunked
F.linear_cross_entropy, and crossentropy.torch.linear_cross_entropy, forward+backward; plus what only ours does:
the loss alone under torch.no_grad() against detached inputs, the per-token statistics' extra time, and the floor
(the three matmuls alone: forward x @ W.T, backward g @ W and g.T @ x).

Each variant runs in its own process (so peak RSS is its own); the processes are interleaved over rounds and the
median time and peak extra RSS (above the inputs) are reported with ratios. Results are appended to
benchmarks/results/bench_linear.csv.

    python benchmarks/bench_linear.py [--n 4096] [--d 1024] [--vocab 32768] [--rounds 2] [--quick] [--device cpu]
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

VARIANTS = ["naive", "torch native chunked", "ours chunked", "ours + stats", "floor: 3 matmuls",
            "ours no_grad (loss only)", "ours detached (loss only)", "cross_entropy on logits",
            "cross_entropy + stats"]


def child(variant: str, n: int, d: int, vocab: int, runs: int, device: str) -> None:
    import torch
    import torch.nn.functional as F

    from crossentropy.torch import cross_entropy, linear_cross_entropy

    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, d, generator=g).to(device).requires_grad_()
    w = (torch.randn(vocab, d, generator=g) * d**-0.5).to(device).requires_grad_()
    y = torch.randint(0, vocab, (n,), generator=g).to(device)
    logits = (x.detach() @ w.detach().T).requires_grad_() if variant.startswith("cross_entropy") else None
    grad_logits = torch.randn(n, vocab, generator=g).to(device) if variant.startswith("floor") else None

    def floor():  # the matmuls a linear cross-entropy cannot avoid, on the full matrices
        x.detach() @ w.detach().T
        grad_logits @ w.detach()
        grad_logits.T @ x.detach()

    def no_grad():
        with torch.no_grad():
            return linear_cross_entropy(x, w, y)

    fn = {
        "naive": lambda: F.cross_entropy(x @ w.T, y),
        "torch native chunked": lambda: F.linear_cross_entropy(x, w, y, options=torch.nn.LinearCrossEntropyOptions()),
        "ours chunked": lambda: linear_cross_entropy(x, w, y),
        "ours + stats": lambda: linear_cross_entropy(x, w, y, return_stats=True)[0],
        "floor: 3 matmuls": floor,
        "ours no_grad (loss only)": no_grad,
        "ours detached (loss only)": lambda: linear_cross_entropy(x.detach(), w.detach(), y),
        "cross_entropy on logits": lambda: cross_entropy(logits, y),
        "cross_entropy + stats": lambda: cross_entropy(logits, y, return_stats=True)[0],
    }[variant]
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    base = rss_bytes()
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    times, loss = [], None
    for _ in range(runs + 1):  # the first run is a warm-up
        x.grad = w.grad = None
        if logits is not None:
            logits.grad = None
        sync()
        start = time.perf_counter()
        loss = fn()
        if loss is not None and loss.requires_grad:
            loss.backward()
        sync()
        times.append(time.perf_counter() - start)
    if device.startswith("cuda"):
        peak = torch.cuda.max_memory_allocated() - base
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
    print(json.dumps({"variant": variant, "median_s": statistics.median(times[1:]), "peak_extra": peak,
                      "loss": None if loss is None else float(loss.detach())}))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4096)
    parser.add_argument("--d", type=int, default=1024)
    parser.add_argument("--vocab", type=int, default=32768)
    parser.add_argument("--rounds", type=int, default=2, help="processes per variant, interleaved")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per process, after a warm-up")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (memory is then CUDA's peak allocated)")
    parser.add_argument("--quick", action="store_true", help="N=512, D=256, V=8192, 1 round of 2 runs")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.d, args.vocab, args.rounds, args.runs = 512, 256, 8192, 1, 2
    if args.child:
        child(args.child, args.n, args.d, args.vocab, args.runs, args.device)
        return 0
    results: dict[str, list[dict]] = {v: [] for v in VARIANTS}
    for _ in range(args.rounds):
        for variant in VARIANTS:
            out = subprocess.run([sys.executable, __file__, "--child", variant, "--n", str(args.n), "--d", str(args.d),
                                  "--vocab", str(args.vocab), "--runs", str(args.runs), "--device", args.device],
                                 capture_output=True, text=True, check=True)
            results[variant].append(json.loads(out.stdout.strip().splitlines()[-1]))
    logits_mib = args.n * args.vocab * 4 / 2**20
    print(f"linear + cross-entropy, float32 on {args.device}, N={args.n} D={args.d} V={args.vocab} "
          f"(full logits {logits_mib:.0f} MiB); median over {args.rounds} processes x {args.runs} runs")
    med = {v: statistics.median(r["median_s"] for r in rs) for v, rs in results.items()}
    mem = {v: statistics.median(r["peak_extra"] for r in rs) for v, rs in results.items()}
    print(f"  {'variant':26s} {'median s':>9s} {'vs naive':>9s} {'peak extra MiB':>15s} {'vs naive':>9s} "
          f"{'loss':>10s}")
    rows = []
    for v in VARIANTS:
        loss = results[v][0]["loss"]
        print(f"  {v:26s} {med[v]:9.3f} {med[v] / med['naive']:8.2f}x {mem[v] / 2**20:15.0f} "
              f"{mem[v] / mem['naive']:8.2f}x {'' if loss is None else f'{loss:10.6f}'}")
        rows.append({"n": args.n, "d": args.d, "vocab": args.vocab, "variant": f"{v} [{args.device}]",
                     "median_s": f"{med[v]:.4f}", "time_vs_naive": f"{med[v] / med['naive']:.3f}",
                     "peak_extra_bytes": int(mem[v]), "mem_vs_naive": f"{mem[v] / mem['naive']:.3f}",
                     "rounds": args.rounds, "runs": args.runs})
    ours, native = "ours chunked", "torch native chunked"
    print(f"  ours / torch native: time {med[ours] / med[native]:.2f}x, memory {mem[ours] / mem[native]:.2f}x "
          f"(bounds: time <= naive, memory <= 0.6x native)")
    print(f"  ours / floor (3 matmuls): {med[ours] / med['floor: 3 matmuls']:.2f}x")
    print(f"  no_grad / detached (loss only): "
          f"{med['ours no_grad (loss only)'] / med['ours detached (loss only)']:.2f}x (target <= 1.1)")
    print(f"  stats overhead: linear {med['ours + stats'] / med[ours]:.3f}x, cross_entropy on logits "
          f"{med['cross_entropy + stats'] / med['cross_entropy on logits']:.3f}x (target < 1.1)")
    print(f"appended {len(rows)} rows to {append_csv('bench_linear', rows)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
