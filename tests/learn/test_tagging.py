"""evaluate_tagging: the token report against scikit-learn, the entity report against seqeval (default, conlleval-
style mode), on golden cases and on hypothesis-generated gold tags with noisy predictions."""

import json
import math
import warnings

import pytest
from conftest import assert_close
from hypothesis import given
from hypothesis import strategies as st
from seqeval.metrics import accuracy_score as seqeval_accuracy
from seqeval.metrics import classification_report as seqeval_report
from seqeval.metrics import f1_score, precision_score, recall_score
from seqeval.metrics.sequence_labeling import get_entities
from sklearn.metrics import accuracy_score, classification_report

from crossentropy.learn import evaluate_tagging
from crossentropy.learn.metrics.tagging import entities
from crossentropy.rules.errors import InputTypeError, InputValueError

TYPES = ["PER", "LOC", "ORG", "MISC"]
TAGS = ["O"] + [f"{p}-{t}" for t in TYPES for p in "BI"]


def assert_report_equal(ours: dict, theirs: dict):
    assert list(ours) == list(theirs)
    for name, row in theirs.items():
        for key in ("precision", "recall", "f1-score"):
            assert_close(ours[name][key], row[key])
        assert ours[name]["support"] == row["support"]


def test_golden_entity_scores():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["I-ORG", "I-LOC"]]
    pred = [["B-PER", "I-PER", "O", "B-ORG"], ["I-ORG", "B-LOC"]]
    e = evaluate_tagging(gold, pred).entity
    # gold: PER(0,0-1) LOC(0,3) ORG(1,0) LOC(1,1); predicted: PER(0,0-1) ORG(0,3) ORG(1,0) LOC(1,1): 3 of 4 right
    assert (e["support"], e["predicted"], e["correct"]) == (4, 4, 3)
    assert_close([e["precision"], e["recall"], e["f1"]], [0.75, 0.75, 0.75])
    assert_close([e["per_type"]["LOC"][k] for k in ("precision", "recall", "f1-score")], [1.0, 0.5, 2 / 3])
    assert_close([e["per_type"]["ORG"][k] for k in ("precision", "recall", "f1-score")], [0.5, 1.0, 2 / 3])
    assert_close(e["macro avg"]["f1-score"], (2 / 3 + 2 / 3 + 1) / 3)
    assert_close(e["weighted avg"]["precision"], (2 * 1.0 + 1 * 0.5 + 1 * 1.0) / 4)


def test_golden_token_scores():
    report = evaluate_tagging([["B-PER", "I-PER", "O", "B-LOC"]], [["B-PER", "O", "O", "B-LOC"]])
    t = report.token
    assert t["I-PER"] == {"precision": 0.0, "recall": 0.0, "f1-score": 0.0, "support": 1}
    assert_close([t["O"]["precision"], t["O"]["recall"]], [0.5, 1.0])
    assert_close(t["micro avg"]["f1-score"], 0.75)
    assert list(t) == ["B-LOC", "B-PER", "I-PER", "O", "micro avg", "macro avg", "weighted avg"]
    assert (report.n_sentences, report.n_tokens) == (1, 4)


@pytest.mark.parametrize("tags,expected", [
    (["I-PER", "I-PER", "O"], [("PER", 0, 1)]),                      # I- without a B- starts an entity
    (["O", "I-LOC", "B-LOC", "I-LOC"], [("LOC", 1, 1), ("LOC", 2, 3)]),
    (["B-PER", "I-LOC", "I-LOC"], [("PER", 0, 0), ("LOC", 1, 2)]),   # broken across types: two entities
    (["B-ORG", "B-ORG", "I-MISC", "B-MISC"], [("ORG", 0, 0), ("ORG", 1, 1), ("MISC", 2, 2), ("MISC", 3, 3)]),
    (["I-PER-X", "I-PER-X", "I-PER"], [("PER-X", 0, 1), ("PER", 2, 2)]),  # a type may contain a hyphen
    (["O", "O"], []),
])
def test_entities_golden_and_as_seqeval(tags, expected):
    assert entities(tags) == expected == get_entities(tags)


def noisy_pair(draw_tags):
    """Gold sentences of IOB tags (valid IOB2 and sloppy) and predictions with each tag redrawn at some rate."""
    @st.composite
    def strategy(draw):
        gold = draw(st.lists(st.lists(draw_tags, min_size=1, max_size=12), min_size=1, max_size=8))
        rate = draw(st.sampled_from([0.0, 0.1, 0.3, 1.0]))
        flips = st.lists(st.tuples(st.floats(0, 1), draw_tags), min_size=12, max_size=12)
        pred = []
        for sentence in gold:
            noise = draw(flips)
            pred.append([new if u < rate else tag for tag, (u, new) in zip(sentence, noise, strict=False)])
        return gold, pred
    return strategy()


@given(noisy_pair(st.sampled_from(TAGS)))
def test_entity_report_equals_seqeval(pair):
    gold, pred = pair
    report = evaluate_tagging(gold, pred)
    e = report.entity
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # seqeval warns on zero divisions, then uses 0 as we do
        assert_close([e["precision"], e["recall"], e["f1"]],
                     [precision_score(gold, pred), recall_score(gold, pred), f1_score(gold, pred)])
        theirs = seqeval_report(gold, pred, output_dict=True)
    if not e["per_type"]:  # no entity on either side: seqeval's macro average is NaN, ours 0 (pinned below)
        theirs["macro avg"] = e["macro avg"]
    micro = theirs.pop("micro avg")
    assert_close([e["precision"], e["recall"], e["f1"]], [micro[k] for k in ("precision", "recall", "f1-score")])
    assert e["support"] == micro["support"]
    assert_report_equal({**e["per_type"], "macro avg": e["macro avg"], "weighted avg": e["weighted avg"]}, theirs)


@given(noisy_pair(st.sampled_from(TAGS)))
def test_token_report_equals_scikit_learn(pair):
    gold, pred = pair
    flat_gold, flat_pred = sum(gold, []), sum(pred, [])
    token = dict(evaluate_tagging(gold, pred).token)
    micro = token.pop("micro avg")
    theirs = classification_report(flat_gold, flat_pred, output_dict=True, zero_division=0)
    accuracy = theirs.pop("accuracy")
    assert_report_equal(token, theirs)
    assert_close([micro["precision"], micro["recall"], micro["f1-score"]], [accuracy] * 3)
    assert_close(micro["f1-score"], accuracy_score(flat_gold, flat_pred))
    assert micro["support"] == len(flat_gold)


def test_no_entities_anywhere_documented_difference():
    """With no entity on either side, seqeval's macro average is NaN (a mean over no types); ours is 0, as its
    micro and weighted averages are."""
    e = evaluate_tagging([["O", "O"]], [["O", "O"]]).entity
    assert e["per_type"] == {} and (e["precision"], e["recall"], e["f1"], e["support"]) == (0.0, 0.0, 0.0, 0)
    assert e["macro avg"]["f1-score"] == 0.0 == e["weighted avg"]["f1-score"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = seqeval_report([["O", "O"]], [["O", "O"]], output_dict=True)
    assert math.isnan(theirs["macro avg"]["f1-score"]) and theirs["weighted avg"]["f1-score"] == 0.0


def test_no_tokens_at_all_is_an_error_where_seqeval_scores_zero():
    """Issue 21 #9 (decision, documented difference): zero tokens is an InputValueError, as evaluate() refuses zero
    samples; seqeval's f1_score gives 0.0 with an UndefinedMetricWarning and its accuracy_score divides by zero."""
    with pytest.raises(InputValueError, match="gold_sequences holds no tokens"):
        evaluate_tagging([[]], [[]])
    with pytest.raises(InputValueError, match="gold_sequences holds no tokens"):
        evaluate_tagging([], [])
    with pytest.warns(UserWarning, match="ill-defined"):
        assert f1_score([[]], [[]]) == 0.0
    with pytest.raises(ZeroDivisionError):
        seqeval_accuracy([[]], [[]])


@given(noisy_pair(st.sampled_from(TAGS)))
def test_properties(pair):
    gold, pred = pair
    forward, backward = evaluate_tagging(gold, pred).entity, evaluate_tagging(pred, gold).entity
    # swapping gold and predictions swaps precision and recall and keeps F1
    assert_close([forward["precision"], forward["f1"]], [backward["recall"], backward["f1"]])
    # sentence order does not matter
    shuffled = evaluate_tagging(gold[::-1], pred[::-1]).entity
    assert_close([shuffled["precision"], shuffled["recall"]], [forward["precision"], forward["recall"]])
    perfect = evaluate_tagging(gold, gold)
    assert perfect.entity["f1"] == (1.0 if perfect.entity["support"] else 0.0)
    assert perfect.token["micro avg"]["f1-score"] == 1.0
    for r in [forward, *forward["per_type"].values()]:
        assert all(0.0 <= r[k] <= 1.0 for k in r if k in ("precision", "recall", "f1", "f1-score"))
    json.dumps(evaluate_tagging(gold, pred).to_dict())  # JSON-safe


def test_to_text_has_the_token_report_then_the_entity_table():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    pred = [["B-PER", "I-PER", "O", "B-LOC"], ["B-MISC", "O"]]
    text = evaluate_tagging(gold, pred).to_text()
    lines = text.splitlines()
    assert lines[0] == "token level (6 tokens, 2 sentences)"
    assert lines[2].split() == ["precision", "recall", "f1-score", "support"]
    rows = {line.split()[0]: line.split()[1:] for line in lines if line.strip() and line.split()[0] in TAGS}
    assert rows["B-ORG"] == ["0.0000", "0.0000", "0.0000", "1"] and rows["O"] == ["1.0000", "1.0000", "1.0000", "2"]
    entity_at = lines.index(next(line for line in lines if line.startswith("entity level")))
    assert "3 gold, 3 predicted, 2 correct" in lines[entity_at]
    assert [line.split()[0] for line in lines[entity_at + 1:] if line.strip()][1:5] == ["LOC", "MISC", "ORG", "PER"]
    assert lines[-3].split() == ["micro", "avg", "0.6667", "0.6667", "0.6667", "3"]
    token_part = lines[:entity_at]
    assert [line.split()[0] for line in token_part[-4:-1]] == ["micro", "macro", "weighted"]


@pytest.mark.parametrize("gold,pred,error,words", [
    ("B-PER", ["B-PER"], InputTypeError, "gold_sequences must be a list of sentences"),
    (["B-PER"], [["B-PER"]], InputTypeError, "gold_sequences\\[0\\] must be a list of tag strings"),
    ([[1]], [["O"]], InputTypeError, "gold_sequences\\[0\\]\\[0\\] must be a tag string"),
    ([["PER"]], [["O"]], InputValueError, "'PER', which is not an IOB tag"),
    ([["O"]], [["B-"]], InputValueError, "predicted_sequences\\[0\\]\\[0\\] is 'B-'"),
    ([["O"], ["O"]], [["O"]], InputValueError, "2 sentences but predicted_sequences has 1"),
    ([["O", "O"]], [["O"]], InputValueError, "sentence 0 has 2 gold tags but 1 predicted"),
    ([[]], [[]], InputValueError, "holds no tokens"),
])
def test_bad_input(gold, pred, error, words):
    with pytest.raises(error, match=words):
        evaluate_tagging(gold, pred)
    with pytest.raises(InputValueError, match="scheme must be 'IOB1' or 'IOB2'"):
        evaluate_tagging([["O"]], [["O"]], scheme="BIOES")
