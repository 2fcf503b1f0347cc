"""crossentropy eval --conll and train --task tagging, run in process (tests/clirun.py): reports equal to the
library's (and seqeval's), the run directory, and malformed CoNLL giving exit 2 with one line naming the line."""

import json
import warnings

import pytest
from clirun import fails, run
from seqeval.metrics import classification_report as seqeval_report
from test_cli import _png_has_content

from crossentropy.learn import evaluate_tagging
from crossentropy.learn.io.conll import format_conll, read_conll
from crossentropy.learn.models.persist import load_model
from crossentropy.learn.samples.ner import generate

GOLD_PRED = """-DOCSTART- -X- O O

EU NNP B-ORG B-ORG
rejects VBZ O O
German JJ B-MISC B-LOC
call NN O O
. . O O

Peter NNP B-PER I-PER
Blackburn NNP I-PER I-PER
in IN O O
Brussels NNP B-LOC B-ORG
"""


@pytest.fixture
def conll(tmp_path):
    (tmp_path / "pred.conll").write_text(GOLD_PRED.replace("\n", "\r\n"))
    return tmp_path / "pred.conll"


def test_eval_conll_text_and_json(conll):
    text = run("eval", "--conll", str(conll)).stdout
    for words in ("token level (9 tokens, 2 sentences)", "entity level (IOB2", "micro avg", "macro avg",
                  "weighted avg", "precision", "f1-score", "support"):
        assert words in text
    data = json.loads(run("eval", "--conll", str(conll), "--json").stdout)
    corpus = read_conll(conll)
    gold, pred = corpus.column(-2), corpus.column(-1)
    assert data["token"] == evaluate_tagging(gold, pred).token
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = seqeval_report(gold, pred, output_dict=True)
    entity = data["entity"]
    # gold ORG EU, MISC German, PER Peter Blackburn, LOC Brussels; predicted: EU and Peter Blackburn (I- I-) right
    assert (entity["support"], entity["predicted"], entity["correct"]) == (4, 4, 2)
    assert entity["precision"] == theirs["micro avg"]["precision"] == 0.5
    assert {k: v["f1-score"] for k, v in entity["per_type"].items()} == {
        k: theirs[k]["f1-score"] for k in ("LOC", "MISC", "ORG", "PER")}
    assert data["scheme"] == "IOB2"
    assert json.loads(run("eval", "--conll", str(conll), "--json", "--scheme", "IOB1").stdout)["scheme"] == "IOB1"


@pytest.mark.parametrize("content,message", [
    ("EU B-ORG\nrejects O\n", "line 1: expected at least 3 whitespace-separated columns (a token, the gold tag and "
                              "the predicted tag), but found 2"),                      # no prediction column at all
    ("EU B-ORG B-ORG\nrejects O\n. O O\n", "line 2: expected 3 columns like line 1, but found 2"),  # ragged
    ("EU B-ORG B-ORG\n\nrejects O O O\n", "line 3: expected 3 columns like line 1, but found 4"),
    ("EU B-ORG ORG\n", "line 1: the predicted tag 'ORG' is not an IOB tag"),
    ("EU NNP B-ORG\n", "line 1: the gold tag 'NNP' is not an IOB tag"),
    ("\n\n", "holds no tokens"),
])
def test_eval_conll_malformed_exit_2_one_line(tmp_path, content, message):
    path = tmp_path / "bad.conll"
    path.write_text(content)
    line = fails("eval", "--conll", str(path), message=message)
    assert str(path) in line


def test_eval_conll_usage_errors(conll, tmp_path):
    fails("eval", "--conll", str(tmp_path / "none.conll"), message="no such file for the CoNLL file")
    fails("eval", "--conll", str(conll), "--proba", "p.npy", message="--proba cannot be combined with --conll")
    fails("eval", message="--proba (or --logits) and --labels are required (or --conll FILE for tagging)")
    fails("eval", "--conll", str(conll), "--scheme", "BIOES", message="invalid choice: 'BIOES'")


def test_train_tagging_writes_the_run_directory(tmp_path):
    (tmp_path / "train.conll").write_text(format_conll(generate(60, seed=0)))
    (tmp_path / "test.conll").write_text(format_conll(generate(20, seed=1)))
    out = tmp_path / "run"
    proc = run("train", "--task", "tagging", "--data", str(tmp_path / "train.conll"), "--test",
               str(tmp_path / "test.conll"), "--epochs", "4", "--label-smoothing", "0.1", "--class-weight",
               "balanced", "--out", str(out), "--quiet")
    assert "60 sentences" in proc.stdout and "trained on 60 sentences" in proc.stdout
    assert "token level" in proc.stdout and "entity level" in proc.stdout
    assert {p.name for p in out.iterdir()} == {"metrics.json", "model.npz", "model.json", "loss_curve.png"}
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"token", "entity", "loss_curve", "validation_loss_curve", "train_seconds"} <= set(metrics)
    assert metrics["n_train"] == 60 and metrics["n_test"] == 20 and metrics["epochs"] == 4
    assert len(metrics["loss_curve"]) == 4 and {"precision", "recall", "f1", "per_type"} <= set(metrics["entity"])
    _png_has_content(out / "loss_curve.png")
    tagger = load_model(out)
    assert tagger.label_smoothing == 0.1 and tagger.class_weight == "balanced"
    assert [len(t) for t in tagger.predict([["Peter", "flew", "."]])] == [3]
    # without --test it holds out --test-size of the sentences; the run directory is never overwritten
    proc = run("train", "--task", "tagging", "--data", str(tmp_path / "train.conll"), "--epochs", "1",
               "--test-size", "0.25", "--out", str(tmp_path / "split"), "--quiet")
    assert "trained on 45 sentences" in proc.stdout and "test set: 15 sentences" in proc.stdout
    fails("train", "--task", "tagging", "--data", str(tmp_path / "train.conll"), "--out", str(out),
          message="already exists and is not empty")


def test_train_tagging_errors(tmp_path):
    (tmp_path / "bad.conll").write_text("Peter B-PER\nflew\n")
    fails("train", "--task", "tagging", "--data", str(tmp_path / "bad.conll"), "--out", str(tmp_path / "r"),
          message="bad.conll, line 2: expected 2 columns like line 1, but found 1")
    (tmp_path / "pos.conll").write_text("Peter NNP\nflew VBD\n")
    fails("train", "--task", "tagging", "--data", str(tmp_path / "pos.conll"), "--out", str(tmp_path / "r"),
          message="pos.conll, line 1: the last-column tag 'NNP' is not an IOB tag")
    # --test FILE is a table for classification (issue 25): a CoNLL file there is refused as such
    fails("train", "--data", "iris", "--test", str(tmp_path / "bad.conll"),
          message="--test bad.conll: unsupported file type '.conll'")
    (tmp_path / "ok.conll").write_text("Peter B-PER\n")
    fails("train", "--task", "tagging", "--data", str(tmp_path / "ok.conll"), "--out", str(tmp_path / "r2"),
          message="leaves none to train on")
