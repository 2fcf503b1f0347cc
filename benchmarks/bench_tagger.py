"""The BiLSTM TokenTagger on template NER (crossentropy.learn.samples.ner), in one process: fit time and entity F1
on held-out sentences (names seen in training, and names never seen), trained with this library's cross-entropy and
with torch.nn.functional.cross_entropy, against a per-word most-frequent-tag lookup as the floor a tagger must beat.

    python benchmarks/bench_tagger.py [--sentences 300] [--rounds 1]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import Counter, defaultdict

import torch.nn.functional as F
from _common import append_csv

from crossentropy.learn import evaluate_tagging
from crossentropy.learn.models.tagger import IGNORE, TokenTagger
from crossentropy.learn.samples.ner import generate


class TorchLossTagger(TokenTagger):
    """The same tagger with PyTorch's own loss (no class weights or smoothing in this benchmark)."""

    def batch_loss(self, logits, targets, weight):
        return F.cross_entropy(logits, targets, weight, ignore_index=IGNORE)


def lookup_tagger(tokens, tags):
    """Each word's most frequent training tag, O for unseen words."""
    counts = defaultdict(Counter)
    for sentence, labels in zip(tokens, tags, strict=True):
        for word, tag in zip(sentence, labels, strict=True):
            counts[word][tag] += 1
    return lambda sentences: [[counts[w].most_common(1)[0][0] if w in counts else "O" for w in s] for s in sentences]


def split(sentences):
    return [[t for t, _ in s] for s in sentences], [[g for _, g in s] for s in sentences]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args(argv)
    train = generate(args.sentences, seed=0, names="train")
    seen = {tuple(s) for s in train}
    tests = {"held-out sentences": [s for s in generate(150, seed=1, names="train") if tuple(s) not in seen][:100],
             "unseen names": generate(100, seed=2, names="test")}
    tokens, tags = split(train)
    variants = {"TokenTagger, crossentropy.torch": TokenTagger, "TokenTagger, F.cross_entropy": TorchLossTagger}
    times, models = {name: [] for name in variants}, {}
    for _ in range(args.rounds):
        for name, cls in variants.items():
            start = time.perf_counter()
            models[name] = cls(random_state=0).fit(tokens, tags)
            times[name].append(time.perf_counter() - start)
    start = time.perf_counter()
    models["per-word lookup (floor)"] = lookup = lookup_tagger(tokens, tags)
    times["per-word lookup (floor)"] = [time.perf_counter() - start]
    base = statistics.median(times["TokenTagger, F.cross_entropy"])
    print(f"{args.sentences} template training sentences, {sum(map(len, tokens))} tokens; fit time median of "
          f"{args.rounds} round(s); entity F1 (seqeval-style, micro)")
    print(f"  {'tagger':34s} {'fit s':>8s} {'vs torch':>9s} " + " ".join(f"{t:>19s}" for t in tests))
    rows = []
    for name, model in models.items():
        fit = statistics.median(times[name])
        predict = model if model is lookup else model.predict
        f1 = {t: evaluate_tagging(split(s)[1], predict(split(s)[0])).entity["f1"] for t, s in tests.items()}
        print(f"  {name:34s} {fit:8.3f} {fit / base:8.2f}x " + " ".join(f"{v:19.4f}" for v in f1.values()))
        rows.append({"tagger": name, "sentences": args.sentences, "fit_s": f"{fit:.4f}",
                     "fit_vs_torch": f"{fit / base:.3f}", **{f"f1 {t}": f"{v:.4f}" for t, v in f1.items()}})
    print(f"appended {len(rows)} rows to {append_csv('bench_tagger', rows)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
