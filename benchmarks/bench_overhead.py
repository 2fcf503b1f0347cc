"""Per-call overhead of the torch drop-in: ``crossentropy.torch.cross_entropy`` forward + backward against
``torch.nn.functional.cross_entropy`` on small inputs, where Python work, not arithmetic, sets the time.

Target (issue 22): at most 2x ``F.cross_entropy`` at (64, 10) and (512, 1000) float32. Prints medians of
interleaved rounds and the ratio, for each ``impl`` the "auto" dispatch may pick.

    python bench_overhead.py [--rounds N]
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from _common import append_csv, cpuinfo, interleaved

import crossentropy.torch as cet

SHAPES = ((64, 10), (512, 1000))
TARGET = 2.0


def step(loss_fn, x, y):
    def run():
        x.grad = None
        loss_fn(x, y).backward()
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2000)
    args = parser.parse_args()
    torch.manual_seed(0)
    print(f"CPU: {cpuinfo()[0]}; torch {torch.__version__}, {torch.get_num_threads()} threads")
    rows = []
    for n, k in SHAPES:
        x = torch.randn(n, k, requires_grad=True)
        y = torch.randint(0, k, (n,))
        variants = {"F.cross_entropy": step(F.cross_entropy, x, y)}
        for impl in ("native", "compiled", "reference", "auto"):
            fn = lambda a, b, impl=impl: cet.cross_entropy(a, b, impl=impl)  # noqa: E731
            variants[f"cross_entropy impl={impl}"] = step(fn, x, y)
        for fn in variants.values():  # warm-up
            fn()
        medians = interleaved(variants, args.rounds)
        base = medians["F.cross_entropy"]
        for name, t in medians.items():
            ratio = t / base
            flag = "" if name == "F.cross_entropy" else ("  ok" if ratio <= TARGET else f"  ABOVE {TARGET}x")
            print(f"({n}, {k}) {name:32s} {t * 1e6:8.1f} us  {ratio:5.2f}x{flag}")
            rows.append({"shape": f"{n}x{k}", "variant": name, "median_s": t, "ratio_to_torch": ratio})
    append_csv("overhead", rows)


if __name__ == "__main__":
    main()
