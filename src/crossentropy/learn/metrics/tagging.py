"""Evaluation of token classification (named-entity recognition and other IOB tagging).

``evaluate_tagging(gold, predicted)`` gives two reports:

* ``token``: scikit-learn's ``classification_report(output_dict=True)`` over the flattened tags (every tag,
  ``O`` included), with micro, macro and weighted averages, as the CoNLL-2003 reports of token classifiers show;
* ``entity``: span-level scores as seqeval's default mode (and conlleval) defines them. An entity is a maximal run
  ``(type, start, end)``: it starts at a ``B-`` tag, at an ``I-`` tag after ``O`` (an ``I-`` without a ``B-``), or
  wherever the type changes, and ends before ``O``, ``B-`` or a change of type. A predicted entity is correct when
  its type, start and end all equal a gold entity's. Precision ``= correct / predicted``, recall
  ``= correct / gold``, ``F1 = 2 P R / (P + R)`` (0 where a denominator is 0), micro-averaged over types, and per
  type.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import classification_report

from ...core.jsonio import json_safe
from ...core.textio import DEFAULT_ENCODING
from ...rules.errors import InputTypeError, InputValueError
from ..choices import SCHEMES, TAGGING_DEFAULTS
from ..io.conll import ConllCorpus, read_conll


def is_iob(tag: str) -> bool:
    """Whether ``tag`` is ``O``, ``B-TYPE`` or ``I-TYPE``."""
    return tag == "O" or (tag[:2] in ("B-", "I-") and len(tag) > 2)


def _check_sequences(sequences, name: str) -> list[list[str]]:
    if isinstance(sequences, (str, bytes)) or not hasattr(sequences, "__len__"):
        raise InputTypeError(f"{name} must be a list of sentences, each a list of tag strings, but got "
                             f"{type(sequences).__name__}.")
    out = []
    for i, seq in enumerate(sequences):
        if isinstance(seq, (str, bytes)) or not hasattr(seq, "__len__"):
            raise InputTypeError(f"{name}[{i}] must be a list of tag strings, but got {type(seq).__name__}; pass "
                                 f"one list per sentence, e.g. [['B-PER', 'O'], ['O']].")
        tags = list(seq)
        for j, tag in enumerate(tags):
            if not isinstance(tag, str):
                raise InputTypeError(f"{name}[{i}][{j}] must be a tag string, but got {type(tag).__name__}.")
            if not is_iob(tag):
                raise InputValueError(f"{name}[{i}][{j}] is {tag!r}, which is not an IOB tag; expected 'O' or "
                                      f"'B-TYPE' / 'I-TYPE' (such as 'B-PER').")
        out.append(tags)
    return out


def entities(tags) -> list[tuple[str, int, int]]:
    """The entities ``(type, start, end)`` (``end`` inclusive) of one sentence of IOB1/IOB2 tags, conlleval-style.

    >>> entities(["B-PER", "I-PER", "O", "I-LOC", "B-LOC", "I-ORG"])
    [('PER', 0, 1), ('LOC', 3, 3), ('LOC', 4, 4), ('ORG', 5, 5)]
    """
    found = []
    start, kind = None, None
    for i, tag in enumerate(list(tags) + ["O"]):
        prefix, new = (tag[0], tag[2:]) if tag != "O" else ("O", None)
        if start is not None and (prefix != "I" or new != kind):
            found.append((kind, start, i - 1))
            start = None
        if prefix != "O" and start is None:
            start, kind = i, new
    return found


def _prf(correct: int, predicted: int, gold: int) -> tuple[float, float, float]:
    precision = correct / predicted if predicted else 0.0
    recall = correct / gold if gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def _entity_report(gold: list[list[str]], predicted: list[list[str]]) -> dict:
    gold_spans = {(i, *e) for i, s in enumerate(gold) for e in entities(s)}
    pred_spans = {(i, *e) for i, s in enumerate(predicted) for e in entities(s)}
    hits = gold_spans & pred_spans
    n_gold = Counter(e[1] for e in gold_spans)
    n_pred = Counter(e[1] for e in pred_spans)
    n_hit = Counter(e[1] for e in hits)
    per_type = {}
    for kind in sorted(n_gold.keys() | n_pred.keys()):
        p, r, f = _prf(n_hit[kind], n_pred[kind], n_gold[kind])
        per_type[kind] = {"precision": p, "recall": r, "f1-score": f, "support": n_gold[kind]}
    precision, recall, f1 = _prf(len(hits), len(pred_spans), len(gold_spans))
    report = {"precision": precision, "recall": recall, "f1": f1, "support": len(gold_spans),
              "predicted": len(pred_spans), "correct": len(hits), "per_type": per_type}
    rows = list(per_type.values())
    support = np.array([r["support"] for r in rows], dtype=np.float64)
    for avg in ("macro avg", "weighted avg"):
        if not rows or (avg == "weighted avg" and support.sum() == 0):
            # no types: 0 (seqeval's macro average is NaN); no gold entities: 0, as seqeval
            report[avg] = {"precision": 0.0, "recall": 0.0, "f1-score": 0.0, "support": len(gold_spans)}
            continue
        weights = support if avg == "weighted avg" else None
        report[avg] = {key: float(np.average([r[key] for r in rows], weights=weights))
                       for key in ("precision", "recall", "f1-score")}
        report[avg]["support"] = len(gold_spans)
    return report


@dataclass
class TaggingReport:
    """Token-level and entity-level scores of predicted tag sequences against gold ones."""

    token: dict
    entity: dict
    scheme: str
    n_sentences: int
    n_tokens: int

    def to_dict(self) -> dict:
        """A JSON-safe dict with the keys ``token`` and ``entity`` (plus ``scheme``, ``n_sentences``,
        ``n_tokens``)."""
        return {"token": self.token, "entity": self.entity, "scheme": self.scheme, "n_sentences": self.n_sentences,
                "n_tokens": self.n_tokens}

    def to_text(self) -> str:
        """The token report (per tag, then micro, macro and weighted averages), then the entity table (per type,
        then the micro average, which is the entity-level precision, recall and F1)."""
        header = f"{'precision':>9s} {'recall':>9s} {'f1-score':>9s} {'support':>9s}"

        def row(name, r, width):
            return (f"{name:>{width}s} {r['precision']:9.4f} {r['recall']:9.4f} {r['f1-score']:9.4f} "
                    f"{int(r['support']):9d}")

        averages = ("micro avg", "macro avg", "weighted avg")
        tags = [k for k in self.token if k not in averages]
        width = max(12, *(len(t) for t in tags))
        lines = [f"token level ({self.n_tokens} tokens, {self.n_sentences} sentences)", "",
                 f"{'':>{width}s} {header}", ""]
        lines += [row(tag, self.token[tag], width) for tag in tags] + [""]
        lines += [row(avg, self.token[avg], width) for avg in averages]
        e = self.entity
        types = list(e["per_type"])
        width = max(12, *(len(t) for t in types)) if types else 12
        lines += ["", f"entity level ({self.scheme}, conlleval/seqeval spans: {e['support']} gold, "
                      f"{e['predicted']} predicted, {e['correct']} correct)", "", f"{'':>{width}s} {header}", ""]
        lines += [row(kind, e["per_type"][kind], width) for kind in types] + [""]
        micro = {"precision": e["precision"], "recall": e["recall"], "f1-score": e["f1"], "support": e["support"]}
        lines += [row("micro avg", micro, width), row("macro avg", e["macro avg"], width),
                  row("weighted avg", e["weighted avg"], width)]
        return "\n".join(lines)


def evaluate_tagging(gold_sequences, predicted_sequences, *, scheme: str = TAGGING_DEFAULTS["scheme"]) -> TaggingReport:
    """Score ``predicted_sequences`` against ``gold_sequences`` (lists of sentences, each a list of IOB tags).

    ``scheme`` is ``"IOB2"`` (every entity starts with ``B-``) or ``"IOB1"`` (``B-`` only between two entities of
    one type). Entities are read the same way for both, as conlleval and seqeval's default mode read them, so an
    ``I-`` tag without a ``B-`` starts an entity and a change of type inside a run splits it; ``scheme`` is
    recorded in the report.

    The token report equals ``sklearn.metrics.classification_report(flat_gold, flat_pred, output_dict=True,
    zero_division=0)``, with its "accuracy" entry written as the "micro avg" row it equals for one tag per token; the
    entity report equals seqeval's ``classification_report(gold, pred, output_dict=True)`` per type and averaged,
    with ``precision``, ``recall``, ``f1`` its micro average.

    >>> report = evaluate_tagging([["B-PER", "I-PER", "O", "B-LOC"]], [["B-PER", "I-PER", "O", "B-ORG"]])
    >>> report.entity["precision"], report.entity["recall"], report.entity["per_type"]["PER"]["f1-score"]
    (0.5, 0.5, 1.0)
    >>> report.token["O"]["precision"], report.token["micro avg"]["f1-score"]
    (1.0, 0.75)
    """
    if scheme not in SCHEMES:
        raise InputValueError(f"scheme must be 'IOB1' or 'IOB2', but got {scheme!r}.")
    gold = _check_sequences(gold_sequences, "gold_sequences")
    pred = _check_sequences(predicted_sequences, "predicted_sequences")
    if len(gold) != len(pred):
        raise InputValueError(f"gold_sequences has {len(gold)} sentences but predicted_sequences has {len(pred)}; "
                              f"pass one predicted sentence per gold sentence.")
    for i, (g, p) in enumerate(zip(gold, pred, strict=True)):
        if len(g) != len(p):
            raise InputValueError(f"sentence {i} has {len(g)} gold tags but {len(p)} predicted tags; pass one "
                                  f"predicted tag per token.")
    flat_gold = [t for s in gold for t in s]
    flat_pred = [t for s in pred for t in s]
    if not flat_gold:
        raise InputValueError("gold_sequences holds no tokens; evaluate_tagging needs at least one tagged token.")
    token = json_safe(classification_report(flat_gold, flat_pred, output_dict=True, zero_division=0))
    accuracy = token.pop("accuracy")  # for single-label tags, the micro average is the accuracy
    averages = {avg: token.pop(avg) for avg in ("macro avg", "weighted avg")}
    token["micro avg"] = {"precision": accuracy, "recall": accuracy, "f1-score": accuracy, "support": len(flat_gold)}
    token.update(averages)
    return TaggingReport(token, _entity_report(gold, pred), scheme, len(gold), len(flat_gold))


def check_iob_columns(corpus: ConllCorpus, columns: dict[int, str]) -> None:
    """Raise ``InputValueError`` naming the file and line of the first tag that is not IOB in ``columns`` (index:
    what the column holds) of ``corpus``."""
    for sentence, numbers in zip(corpus.sentences, corpus.lines, strict=True):
        for row, number in zip(sentence, numbers, strict=True):
            for column, side in columns.items():
                if not is_iob(row[column]):
                    raise InputValueError(f"{corpus.name}, line {number}: the {side} tag {row[column]!r} is not an "
                                          f"IOB tag; expected 'O', 'B-TYPE' or 'I-TYPE' (such as 'B-PER').")


def evaluate_conll(path, *, scheme: str = TAGGING_DEFAULTS["scheme"], encoding: str = DEFAULT_ENCODING
                   ) -> TaggingReport:
    """``evaluate_tagging`` of a CoNLL file whose last two columns are the gold and the predicted tags (the layout
    conlleval reads: ``token [other columns] gold predicted``), decoded with ``encoding``. A line with a non-IOB
    tag is named in the error."""
    corpus = read_conll(path, min_columns=3, what="a token, the gold tag and the predicted tag", encoding=encoding)
    check_iob_columns(corpus, {-2: "gold", -1: "predicted"})
    return evaluate_tagging(corpus.column(-2), corpus.column(-1), scheme=scheme)
