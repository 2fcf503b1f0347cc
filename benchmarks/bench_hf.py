"""Hugging Face transformers: peak memory of one training step of a tiny random Llama, unpatched (transformers
computes the full logits, upcasts them to float32 and takes their cross-entropy) against
crossentropy.integrations.transformers.patch (the loss from the final hidden states through linear_cross_entropy,
one chunk of logits at a time).

Memory is the process's peak resident set above the level just before the step, read from the kernel: the peak is
reset (``/proc/self/clear_refs``, "5") once the model, the batch and the optimizer exist, and ``VmHWM`` is read after
the step (forward, backward, ``SGD.step``). It counts everything the step touches (tensors, the allocator's slack,
our CPU buffer pool), as a user's ``top`` does. Each variant runs in its own process; the floor printed beside it is
the float32 logits of the batch, ``N x V x 4`` bytes, which the unpatched model holds at least once more for their
gradient. Results are appended to benchmarks/results/bench_hf.csv.

    python benchmarks/bench_hf.py [--vocab 32768 131072] [--batch 2] [--seq 512] [--hidden 64]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

from _common import append_csv, rss_bytes

VARIANTS = ["unpatched", "patched"]


def reset_peak() -> None:
    """Set the peak resident set to the current one (Linux; elsewhere the peak stays the process's)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def peak() -> int:
    """``VmHWM`` in bytes; where /proc does not give it, ``ru_maxrss`` (the peak since the process started)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def child(variant: str, vocab: int, batch: int, seq: int, hidden: int) -> None:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from crossentropy.integrations.transformers import patch

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=vocab, hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2)
    model = LlamaForCausalLM(config).train()
    if variant == "patched":
        patch(model)
    ids = torch.randint(0, vocab, (batch, seq))
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    base = rss_bytes()
    reset_peak()
    start = time.perf_counter()
    loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    optimizer.step()
    seconds = time.perf_counter() - start
    print(json.dumps({"variant": variant, "peak_extra": peak() - base, "seconds": seconds,
                      "loss": float(loss)}))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vocab", type=int, nargs="+", default=[32768, 131072])
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--seq", type=int, default=512)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.vocab[0], args.batch, args.seq, args.hidden)
        return 0
    n = args.batch * args.seq
    print(f"one training step of a tiny Llama (hidden {args.hidden}, 2 layers), float32 on CPU, {n} tokens; "
          f"peak resident memory above the level before the step")
    print(f"  {'vocab':>7s} {'logits MiB':>11s} {'variant':10s} {'peak extra MiB':>15s} {'vs logits':>10s} "
          f"{'s':>7s} {'loss':>9s}")
    rows = []
    for vocab in args.vocab:
        result = {}
        for variant in VARIANTS:
            out = subprocess.run([sys.executable, __file__, "--child", variant, "--vocab", str(vocab), "--batch",
                                  str(args.batch), "--seq", str(args.seq), "--hidden", str(args.hidden)],
                                 capture_output=True, text=True, check=True)
            result[variant] = json.loads(out.stdout.strip().splitlines()[-1])
        logits = n * vocab * 4
        for variant in VARIANTS:
            r = result[variant]
            print(f"  {vocab:7d} {logits / 2**20:11.0f} {variant:10s} {r['peak_extra'] / 2**20:15.0f} "
                  f"{r['peak_extra'] / logits:9.2f}x {r['seconds']:7.2f} {r['loss']:9.5f}")
            rows.append({"vocab": vocab, "tokens": n, "hidden": args.hidden, "variant": variant,
                         "peak_extra_bytes": r["peak_extra"], "logits_bytes": logits,
                         "seconds": f"{r['seconds']:.3f}", "loss": f"{r['loss']:.6f}"})
        ratio = result["patched"]["peak_extra"] / result["unpatched"]["peak_extra"]
        print(f"  V={vocab}: patched / unpatched peak memory {ratio:.3f}x (target < 1)")
    print(f"appended {len(rows)} rows to {append_csv('bench_hf', rows)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
