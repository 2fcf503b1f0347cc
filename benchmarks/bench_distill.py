"""Linear-head distillation forward+backward on CPU: the naive two-logits path (both heads' full logits, torch
log_softmax + F.kl_div) against crossentropy.torch.linear_distillation_loss (chunked, analytic gradients).

Time: the variants interleaved in this one process, medians over rounds. Peak memory: each variant in its own
subprocess, peak RSS above the level after the inputs are made. Prints both with ratios against the naive path,
and the size of one full logits matrix (the floor the naive path cannot go below, twice over).

    python benchmarks/bench_distill.py [--n 1024] [--ds 256] [--dt 512] [--vocab 32768] [--rounds 3] [--quick]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys

from _common import append_csv, interleaved, rss_bytes

VARIANTS = ["naive", "ours chunked"]


def make(n: int, ds: int, dt: int, vocab: int):
    import torch

    g = torch.Generator().manual_seed(0)
    xs = torch.randn(n, ds, generator=g).requires_grad_()
    ws = (torch.randn(vocab, ds, generator=g) * ds**-0.5).requires_grad_()
    xt = torch.randn(n, dt, generator=g)
    wt = torch.randn(vocab, dt, generator=g) * dt**-0.5
    y = torch.randint(0, vocab, (n,), generator=g)
    y[::10] = -100
    return xs, ws, xt, wt, y


def step(variant: str, xs, ws, xt, wt, y, tau: float):
    """One forward+backward of the forward KL, "mean" over the kept tokens; returns the loss."""
    import torch
    import torch.nn.functional as F

    from crossentropy.torch import linear_distillation_loss

    xs.grad = ws.grad = None
    if variant == "naive":
        kept = y != -100
        ls = torch.log_softmax((xs[kept] @ ws.T) / tau, -1)
        with torch.no_grad():
            lt = torch.log_softmax((xt[kept] @ wt.T) / tau, -1)
        loss = F.kl_div(ls, lt, log_target=True, reduction="batchmean") * tau**2
    else:
        loss = linear_distillation_loss(xs, ws, xt, wt, y, temperature=tau)
    loss.backward()
    return float(loss.detach())


def child(variant: str, args) -> None:
    tensors = make(args.n, args.ds, args.dt, args.vocab)
    xs, ws, xt, wt, y = tensors
    step(variant, xs[:8].detach().requires_grad_(), ws, xt[:8], wt, y[:8], args.tau)  # load kernels, not counted
    base = rss_bytes()
    loss = step(variant, *tensors, args.tau)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"variant": variant, "peak_extra": peak - base, "loss": loss}))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1024, help="tokens")
    parser.add_argument("--ds", type=int, default=256, help="student hidden size")
    parser.add_argument("--dt", type=int, default=512, help="teacher hidden size")
    parser.add_argument("--vocab", type=int, default=32768)
    parser.add_argument("--tau", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds, after a warm-up")
    parser.add_argument("--quick", action="store_true", help="N=256, V=32768, 1 round")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.rounds = 256, 1
    if args.child:
        child(args.child, args)
        return 0
    flags = ["--n", str(args.n), "--ds", str(args.ds), "--dt", str(args.dt), "--vocab", str(args.vocab),
             "--tau", str(args.tau)]
    mem, losses = {}, {}
    for variant in VARIANTS:
        out = subprocess.run([sys.executable, __file__, "--child", variant, *flags], capture_output=True, text=True,
                             check=True)
        row = json.loads(out.stdout.strip().splitlines()[-1])
        mem[variant], losses[variant] = row["peak_extra"], row["loss"]
    tensors = make(args.n, args.ds, args.dt, args.vocab)
    fns = {v: (lambda v=v: step(v, *tensors, args.tau)) for v in VARIANTS}
    interleaved(fns, 1)  # warm-up
    med = interleaved(fns, args.rounds)
    logits_mib = args.n * args.vocab * 4 / 2**20
    print(f"linear distillation (forward KL, tau={args.tau:g}) fwd+bwd, float32, N={args.n} Ds={args.ds} "
          f"Dt={args.dt} V={args.vocab}; one full logits matrix {logits_mib:.0f} MiB; time: median of "
          f"{args.rounds} interleaved rounds; memory: peak RSS above the inputs, one subprocess per variant")
    print(f"  {'variant':14s} {'median s':>9s} {'vs naive':>9s} {'peak extra MiB':>15s} {'vs naive':>9s} "
          f"{'vs 1 logits':>12s} {'loss':>10s}")
    rows = []
    for v in VARIANTS:
        print(f"  {v:14s} {med[v]:9.3f} {med[v] / med['naive']:8.2f}x {mem[v] / 2**20:15.0f} "
              f"{mem[v] / mem['naive']:8.2f}x {mem[v] / 2**20 / logits_mib:11.2f}x {losses[v]:10.6f}")
        rows.append({"n": args.n, "ds": args.ds, "dt": args.dt, "vocab": args.vocab, "variant": v,
                     "median_s": f"{med[v]:.4f}", "time_vs_naive": f"{med[v] / med['naive']:.3f}",
                     "peak_extra_bytes": int(mem[v]), "mem_vs_naive": f"{mem[v] / mem['naive']:.3f}",
                     "rounds": args.rounds})
    print(f"appended {len(rows)} rows to {append_csv('bench_distill', rows)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
