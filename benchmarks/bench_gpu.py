"""Cross-entropy and linear cross-entropy on a CUDA device, forward + backward, in one process: our Triton row
kernel against torch's F.cross_entropy, torch.compile(F.cross_entropy), Liger and quack where installed, with a
device copy of the logits as the floor (the bytes a fused forward + backward must at least move: read the logits
once, write the gradient once); and our chunked linear cross-entropy on Triton rows against torch's chunked
F.linear_cross_entropy, Liger's fused linear cross-entropy and cut-cross-entropy where installed.

Time is the median of CUDA-event timings; memory is the peak of torch.cuda.max_memory_allocated above the inputs.
Prints the device name, and each variant's ratio to ours; for plain CE also its share of the copy's bandwidth
(copy time / variant time).

    python benchmarks/bench_gpu.py [--runs 10]
    python benchmarks/bench_gpu.py --dry-run       # tiny shapes, any device (CPU under TRITON_INTERPRET=1)

Without a CUDA device (and without --dry-run) it says so and exits 0.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

CE_SHAPES = [(8192, 32000), (8192, 128256)]
LINEAR_SHAPES = [(8192, 4096, 128256), (16384, 2048, 248320)]
DRY_CE_SHAPES = [(4, 70)]
DRY_LINEAR_SHAPES = [(6, 8, 70)]


def _timer(device):
    """``time(fn, runs) -> (median seconds, peak bytes above the start)``: CUDA events on CUDA, wall clock else."""
    import torch

    def run(fn, runs: int):
        fn()  # warm-up (compilation, autotuning)
        times = []
        if device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
            for _ in range(runs):
                start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                fn()
                stop.record()
                torch.cuda.synchronize()
                times.append(start.elapsed_time(stop) / 1e3)
            return statistics.median(times), torch.cuda.max_memory_allocated() - base
        for _ in range(runs):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return statistics.median(times), 0
    return run


def _optional(name: str):
    """The module ``name``, or None when it does not import."""
    import importlib

    try:
        return importlib.import_module(name)
    except Exception:  # an optional competitor: absent or broken installs are skipped alike
        return None


def _coefficient_maker(target, vocab, dtype):
    from crossentropy.rules.targets import index_coefficients
    from crossentropy.torch._xp import TORCH

    return lambda start, stop: index_coefficients(TORCH, target[start:stop], vocab, dtype=dtype)


def ce_variants(x, y, dry: bool) -> dict:
    """Name -> a function running forward + backward of mean cross-entropy on logits ``x`` (n, V)."""
    import torch
    import torch.nn.functional as F

    import crossentropy.torch as cet
    from crossentropy.kernels.triton import rows

    n, vocab = x.shape
    coef_of = _coefficient_maker(y, vocab, torch.float32)
    scale = torch.full((n,), 1.0 / n, device=x.device)
    leaf = x.detach().clone().requires_grad_()
    copy = torch.empty_like(x)

    def ours():
        return rows.softmax_rows(x, coef_of(0, n), z_loss=0.0, softcap=None, dtype=torch.float32, row_scale=scale)

    def torch_ce(fn):
        def run():
            leaf.grad = None
            fn(leaf, y).backward()
        return run

    variants = {"floor: copy of the logits": lambda: copy.copy_(x), "ours (Triton rows)": ours,
                "ours (cross_entropy, impl='triton')": torch_ce(lambda z, t: cet.cross_entropy(z, t, impl="triton")),
                "F.cross_entropy": torch_ce(F.cross_entropy)}
    if not dry:
        variants["torch.compile(F.cross_entropy)"] = torch_ce(torch.compile(F.cross_entropy))
    liger = _optional("liger_kernel.transformers.functional")
    if liger is not None:
        variants["Liger"] = torch_ce(liger.liger_cross_entropy)
    quack = _optional("quack.cross_entropy")
    if quack is not None:
        variants["quack"] = torch_ce(lambda z, t: quack.cross_entropy(z, t).mean())
    return variants


def linear_variants(x, w, y, dry: bool) -> dict:
    """Name -> a function running forward + backward of mean linear cross-entropy."""
    import torch
    import torch.nn.functional as F

    import crossentropy.torch as cet
    from crossentropy.kernels.triton import linear

    n, vocab = x.shape[0], w.shape[0]
    coef_of = _coefficient_maker(y, vocab, torch.float32)
    scale = torch.full((n,), 1.0 / n, device=x.device)
    xl, wl = x.detach().clone().requires_grad_(), w.detach().clone().requires_grad_()

    def ours():
        r = linear.linear_rows(x, w, None, coef_of, scale, chunk_size=2 if dry else None)
        return r.loss.sum() / n, r.grad_x.to(x.dtype), r.grad_w.to(w.dtype)

    def autograd(fn):
        def run():
            xl.grad = wl.grad = None
            fn().backward()
        return run

    variants = {"ours (chunked, Triton rows)": ours,
                "ours (linear_cross_entropy, impl='triton')": autograd(
                    lambda: cet.linear_cross_entropy(xl, wl, y, chunk_size=2 if dry else None, impl="triton")),
                "torch F.linear_cross_entropy (chunked)": autograd(
                    lambda: F.linear_cross_entropy(xl, wl, y, options=torch.nn.LinearCrossEntropyOptions()))}
    liger = _optional("liger_kernel.transformers.fused_linear_cross_entropy")
    if liger is not None:
        loss_fn = liger.LigerFusedLinearCrossEntropyLoss()
        variants["Liger fused linear CE"] = autograd(lambda: loss_fn(wl, xl, y))
    cce = _optional("cut_cross_entropy")
    if cce is not None:
        variants["cut-cross-entropy (default)"] = autograd(lambda: cce.linear_cross_entropy(xl, wl, y))
    return variants


def _report(title: str, results: dict, floor: str | None = None) -> None:
    print(title)
    ours = next(v for k, v in results.items() if k.startswith("ours"))
    for name, (seconds, peak) in results.items():
        line = f"  {name:<42} {seconds * 1e3:10.3f} ms  {peak / 2**20:10.1f} MiB  x{seconds / ours[0]:.2f} of ours"
        if floor is not None and name != floor:
            line += f"  {results[floor][0] / seconds:6.1%} of copy bandwidth"
        print(line)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--dry-run", action="store_true", help="tiny shapes on any device (the code paths only)")
    args = parser.parse_args(argv)
    import torch

    if not (torch.cuda.is_available() or args.dry_run):
        print("bench_gpu: no CUDA device is present; nothing measured.")
        return 0
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    print(f"device: {torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu (dry run)'}")
    time_it = _timer(device)
    g = torch.Generator().manual_seed(0)
    for n, vocab in DRY_CE_SHAPES if args.dry_run else CE_SHAPES:
        for dtype in (torch.bfloat16, torch.float32):
            x = torch.randn(n, vocab, generator=g).to(device, dtype)
            y = torch.randint(0, vocab, (n,), generator=g).to(device)
            results = {name: time_it(fn, args.runs) for name, fn in ce_variants(x, y, args.dry_run).items()}
            _report(f"cross-entropy forward + backward, {n} x {vocab}, {str(dtype).removeprefix('torch.')}",
                    results, floor="floor: copy of the logits")
            del x
    for n, hidden, vocab in DRY_LINEAR_SHAPES if args.dry_run else LINEAR_SHAPES:
        x = (torch.randn(n, hidden, generator=g)).to(device, torch.bfloat16)
        w = (torch.randn(vocab, hidden, generator=g) * hidden**-0.5).to(device, torch.bfloat16)
        y = torch.randint(0, vocab, (n,), generator=g).to(device)
        results = {name: time_it(fn, args.runs) for name, fn in linear_variants(x, w, y, args.dry_run).items()}
        _report(f"linear cross-entropy forward + backward, {n} tokens, H {hidden}, V {vocab}, bfloat16", results)
        del x, w
    return 0


if __name__ == "__main__":
    sys.exit(main())
