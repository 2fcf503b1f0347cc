"""TokenTagger: padding ignored through ignore_index (against PyTorch on the unpadded tokens), gradients, learning
template NER to entity F1 >= 0.9 on held-out sentences, persistence without pickle, tag_file, bad input."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import assert_close
from hypothesis import given
from hypothesis import strategies as st

from crossentropy.learn.io.conll import format_conll, parse_conll, read_conll
from crossentropy.learn.metrics.tagging import evaluate_conll, evaluate_tagging
from crossentropy.learn.models.persist import load_model
from crossentropy.learn.models.tagger import IGNORE, TaggerNetwork, TokenTagger, tag_file, train_tagger, word_shape
from crossentropy.learn.models.training import torch_loss
from crossentropy.learn.samples.ner import generate
from crossentropy.rules.errors import InputValueError
from crossentropy.torch import cross_entropy


def corpus(sentences, name):
    return parse_conll(format_conll(sentences), name=name)


@pytest.fixture(scope="module")
def trained():
    """A tagger fitted on 300 template sentences (two thirds of the names); tested on 100 other sentences none of
    which it saw."""
    train = generate(300, seed=0, names="train")
    seen = {tuple(s) for s in train}
    test = [s for s in generate(130, seed=1, names="train") if tuple(s) not in seen][:100]
    return train_tagger(corpus(train, "train"), corpus(test, "test"), seed=0), test


def test_learns_template_ner_to_entity_f1_0_9_on_held_out_sentences(trained):
    result, test = trained
    assert result.n_train == 300 and result.n_test == len(test) == 100
    entity = result.report.entity
    assert entity["f1"] >= 0.9, result.report.to_text()
    assert entity["support"] > 150 and set(entity["per_type"]) == {"PER", "LOC", "ORG", "MISC"}
    assert result.report.token["O"]["f1-score"] >= 0.95
    curve = result.tagger.loss_curve_
    assert len(curve) == result.tagger.epochs and curve[-1] < curve[0] / 10


def test_tags_names_it_never_saw_from_context_and_shape(trained):
    """Sentences whose entity names are all from the held-out third: measured 0.918 entity F1 (seed 0)."""
    test = generate(100, seed=2, names="test")
    tagger = trained[0].tagger
    report = evaluate_tagging([[g for _, g in s] for s in test], tagger.predict([[t for t, _ in s] for s in test]))
    assert report.entity["f1"] >= 0.85, report.to_text()


def test_padding_is_ignored_and_the_loss_is_pytorchs_on_the_real_tokens():
    torch.manual_seed(0)
    tagger = TokenTagger(class_weight=None)
    sentences = generate(6, seed=5)
    tokens, tags = [[t for t, _ in s] for s in sentences], [[g for _, g in s] for s in sentences]
    tagger.fit(tokens, tags)
    tagger.network_.eval()
    batch = tagger._encode(tokens, tags)
    assert (batch.targets == IGNORE).sum() == batch.targets.numel() - sum(map(len, tokens))  # padding only
    with torch.no_grad():
        logits = tagger.network_(batch.ids, batch.lengths)  # (batch, tags, time)
        ours = torch_loss(tagger, logits, batch.targets, None)
        alone = [tagger._encode([s]) for s in tokens]
        real = torch.cat([tagger.network_(b.ids, b.lengths)[0].T for b in alone])  # each sentence run unpadded
    target = torch.cat([batch.targets[i, :len(s)] for i, s in enumerate(tokens)])
    assert_close(torch.cat([logits[i, :, :len(s)].T for i, s in enumerate(tokens)]), real, np.float32)
    assert_close(ours, F.cross_entropy(real, target), np.float32)
    weight = torch.rand(len(tagger.tags_)) + 0.5
    assert_close(cross_entropy(logits, batch.targets, weight, ignore_index=IGNORE),
                 F.cross_entropy(real, target, weight), np.float32)


def test_gradient_of_the_padded_loss_with_weights_and_smoothing():
    torch.manual_seed(1)
    logits = torch.randn(3, 5, 4, dtype=torch.float64, requires_grad=True)  # (batch, tags, time)
    target = torch.tensor([[0, 4, IGNORE, IGNORE], [2, 2, 1, 3], [1, IGNORE, IGNORE, IGNORE]])
    weight = torch.rand(5, dtype=torch.float64) + 0.1
    assert torch.autograd.gradcheck(
        lambda x: cross_entropy(x, target, weight, ignore_index=IGNORE, label_smoothing=0.1), (logits,))
    loss = cross_entropy(logits, target, ignore_index=IGNORE)
    loss.backward()
    assert torch.all(logits.grad.transpose(1, 2)[target == IGNORE] == 0)  # no gradient into padding


def test_class_weights_label_smoothing_and_focal_train(tmp_path):
    sentences = generate(40, seed=2)
    tokens, tags = [[t for t, _ in s] for s in sentences], [[g for _, g in s] for s in sentences]
    for options in ({"class_weight": "balanced", "label_smoothing": 0.1}, {"loss": "focal", "optimizer": "adamw"},
                    {"class_weight": "effective_number"}):
        tagger = TokenTagger(epochs=3, **options).fit(tokens, tags)
        assert np.isfinite(tagger.loss_curve_).all() and len(tagger.validation_loss_curve_) == 3
        predicted = tagger.predict(tokens)
        assert [len(p) for p in predicted] == [len(t) for t in tokens]
        assert set(sum(predicted, [])) <= set(tagger.tags_)


def test_save_and_load_without_pickle(trained, tmp_path):
    result, test = trained
    npz, meta = result.tagger.save(tmp_path, metadata={"data": "train"})
    with np.load(npz, allow_pickle=False) as arrays:
        assert all(arrays[name].dtype != object for name in arrays.files)
    info = json.loads(meta.read_text())
    assert info["kind"] == "TokenTagger" and info["tags"] == result.tagger.tags_ and info["metadata"]["data"]
    tokens = [[t for t, _ in s] for s in test]
    for loaded in (TokenTagger.load(tmp_path), load_model(tmp_path)):
        assert loaded.predict(tokens) == result.tagger.predict(tokens)
        assert loaded.get_params() == result.tagger.get_params()


def test_tag_file_conll_with_gold_then_eval_and_plain_text(trained, tmp_path):
    result, test = trained
    result.tagger.save(tmp_path)
    (tmp_path / "test.conll").write_text(format_conll(test))
    rows = tag_file(tmp_path, tmp_path / "test.conll", tmp_path / "tagged.conll")
    assert [[r[:2] for r in s] for s in rows] == test and len(rows[0][0]) == 3
    report = evaluate_conll(tmp_path / "tagged.conll")  # token, gold, predicted
    assert report.entity == result.report.entity
    with pytest.raises(InputValueError, match="already exists"):
        tag_file(tmp_path, tmp_path / "test.conll", tmp_path / "tagged.conll")
    (tmp_path / "in.txt").write_text("Angela Merkel flew to Berlin on Monday .\n\nShares of Siemens fell .\n")
    rows = tag_file(load_model(tmp_path), tmp_path / "in.txt")  # a loaded tagger or its run directory
    assert rows[0][:2] == [("Angela", "B-PER"), ("Merkel", "I-PER")] and rows[0][4] == ("Berlin", "B-LOC")
    assert rows[1][2] == ("Siemens", "B-ORG")
    tokens_only = tmp_path / "tokens.conll"
    tokens_only.write_text("\n".join("Police in Madrid arrested two men on Friday .".split()) + "\n")
    assert tag_file(tmp_path, tokens_only)[0][:3] == [("Police", "O"), ("in", "O"), ("Madrid", "B-LOC")]
    assert read_conll(tmp_path / "tagged.conll", min_columns=3).n_columns == 3


def _tamper_json(edit):
    def tamper(d):
        info = json.loads((d / "model.json").read_text())
        edit(info)
        (d / "model.json").write_text(json.dumps(info))
    return tamper


def _tamper_npz(edit):
    def tamper(d):
        with np.load(d / "model.npz") as npz:
            arrays = {k: npz[k] for k in npz.files}
        edit(arrays)
        np.savez(d / "model.npz", **arrays)
    return tamper


def _set(*path_and_value):
    *path, value = path_and_value

    def edit(info):
        node = info
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value(node[path[-1]]) if callable(value) else value
    return edit


TAGGER_TAMPERINGS = {  # issue 21 #30: each was a RuntimeError or TypeError traceback, or a silently different model
    "embedding_dim inf": (_tamper_json(_set("params", "embedding_dim", float("inf"))),
        "`embedding_dim` parameter of TokenTagger must be an int"),
    "embedding_dim huge": (_tamper_json(_set("params", "embedding_dim", 10**9)), "'embeddings.0.weight' has shape"),
    "hidden_size text": (_tamper_json(_set("params", "hidden_size", "64")),
        "`hidden_size` parameter of TokenTagger must be an int"),
    "hidden_size true": (_tamper_json(_set("params", "hidden_size", True)),
        "params 'hidden_size' must be a number, not true/false"),
    "hidden_size smaller": (_tamper_json(_set("params", "hidden_size", 32)), "'lstm.weight_hh_l0' has shape"),
    "dropout 2": (_tamper_json(_set("params", "dropout", 2.0)),
        "`dropout` parameter of TokenTagger must be a float in the range [0.0, 1.0)"),
    "num_threads 0": (_tamper_json(_set("params", "num_threads", 0)), "`num_threads` parameter of TokenTagger must be"),
    "unknown param": (_tamper_json(_set("params", "colour", 1)), "params must be exactly"),
    "params a list": (_tamper_json(_set("params", [])), "params must be exactly"),
    "params null": (_tamper_json(_set("params", None)), "params must be exactly"),
    "repeated tag": (_tamper_json(_set("tags", lambda t: [t[0], *t[1:-1], t[0]])), "tags must be a list of distinct"),
    "tag a number": (_tamper_json(_set("tags", lambda t: [1, *t[1:]])), "tags must be a list of distinct"),
    "two vocabularies": (_tamper_json(_set("vocabularies", lambda v: v[:2])), "vocabularies must be three lists"),
    "no <pad>": (_tamper_json(_set("vocabularies", 0, lambda v: v[1:])), "vocabularies must be three lists"),
    "shorter vocabulary": (_tamper_json(_set("vocabularies", 0, lambda v: v[:-1])), "'embeddings.0.weight' has shape"),
    "loss curve inf": (_tamper_json(_set("loss_curve", lambda c: [*c, float("inf")])), "list of finite numbers"),
    "float16 weight": (_tamper_npz(_set("output.weight", lambda a: a.astype(np.float16))), "needs float32"),
    "NaN weight": (_tamper_npz(_set("output.bias", lambda a: a * np.nan)), "holds NaN or inf"),
    "missing array": (_tamper_npz(lambda a: a.pop("output.bias")), "missing or unexpected arrays"),
    "extra array": (_tamper_npz(_set("colour", np.zeros(3, np.float32))), "missing or unexpected arrays"),
    "wrong shape": (_tamper_npz(_set("output.weight", lambda a: a[:, :-1])), "'output.weight' is float32 of shape"),
    "nested 100,000 deep": (lambda d: (d / "model.json").write_bytes(b"[" * 100_000 + b"]" * 100_000),
                            "nests its values too deeply"),
}


@pytest.mark.parametrize("name", list(TAGGER_TAMPERINGS))
def test_tampered_tagger_files_are_refused(trained, tmp_path, name):
    tagger = trained[0].tagger
    tagger.save(tmp_path)
    tokens = [["Angela", "Merkel", "flew", "to", "Paris", "."]]
    for loaded in (TokenTagger.load(tmp_path), load_model(tmp_path)):  # the untouched file loads identically
        assert loaded.predict(tokens) == tagger.predict(tokens) and loaded.get_params() == tagger.get_params()
    tamper, message = TAGGER_TAMPERINGS[name]
    tamper(tmp_path)
    for load in (TokenTagger.load, load_model):
        with pytest.raises(InputValueError) as info:
            load(tmp_path)
        assert message in str(info.value)


def test_saving_a_tagger_into_a_missing_directory_is_a_clear_error(trained, tmp_path):
    with pytest.raises(InputValueError, match="does not exist; create it first"):
        trained[0].tagger.save(tmp_path / "missing")


def test_tag_file_names_the_encoding_of_a_latin1_text(trained, tmp_path):
    """Issue 21 #31: a Latin-1 .txt is a clean InputValueError naming the encoding, and encoding= reads it."""
    trained[0].tagger.save(tmp_path)
    (tmp_path / "latin1.txt").write_bytes("Angela Merkel flew to M\xfcnchen .\n".encode("latin-1"))
    with pytest.raises(InputValueError, match="latin1.txt is not UTF-8 text"):
        tag_file(tmp_path, tmp_path / "latin1.txt")
    rows = tag_file(tmp_path, tmp_path / "latin1.txt", encoding="latin-1")
    assert [row[0] for row in rows[0]] == ["Angela", "Merkel", "flew", "to", "München", "."]


@given(st.lists(st.lists(st.text(min_size=1, max_size=8).filter(lambda t: t.split() == [t]), max_size=6),
                max_size=4))
def test_predict_keeps_every_sentence_and_length(trained, sentences):
    predicted = trained[0].tagger.predict(sentences)
    assert [len(p) for p in predicted] == [len(s) for s in sentences]
    assert set(sum(predicted, [])) <= set(trained[0].tagger.tags_)


def test_word_shape_and_network_shapes():
    assert [word_shape(t) for t in ["Peter", "EU", "1996", "x-ray", "McDonald's"]] == ["Xxx", "XX", "dd", "x-xx",
                                                                                      "XxXxx'x"]
    net = TaggerNetwork((10, 5, 7), 4)
    out = net(torch.ones(2, 3, 6, dtype=torch.long), torch.tensor([6, 2]))
    assert out.shape == (2, 4, 6)


def test_bad_input(tmp_path):
    with pytest.raises(InputValueError, match="same length"):
        TokenTagger().fit([["a"]], [])
    with pytest.raises(InputValueError, match="sentence 0 has 2 tokens and 1 tags"):
        TokenTagger().fit([["a", "b"]], [["O"]])
    with pytest.raises(ValueError, match="The 'loss' parameter of TokenTagger must be a str among"):
        TokenTagger(loss="hinge").fit([["a"]], [["O"]])
    with pytest.raises(ValueError, match="The 'optimizer' parameter of TokenTagger must be a str among"):
        TokenTagger(optimizer="rmsprop").fit([["a"]], [["O"]])
    with pytest.raises(InputValueError, match="not fitted"):
        TokenTagger().predict([["a"]])
    with pytest.raises(InputValueError, match="has no saved model"):
        TokenTagger.load(tmp_path)
    (tmp_path / "model.json").write_text(json.dumps({"format": "crossentropy-model", "kind": "CNNClassifier"}))
    np.savez(tmp_path / "model.npz")
    with pytest.raises(InputValueError, match="is not a saved tagger"):
        TokenTagger.load(tmp_path)
    with pytest.raises(InputValueError, match="leaves none to train on"):
        train_tagger(corpus(generate(1), "one"), test_size=0.5)


def test_a_subclass_replaces_the_batch_loss():
    """``batch_loss`` is the one place a batch's loss comes from (``benchmarks/bench_tagger.py`` swaps in PyTorch's
    own): every training batch goes through it."""
    sentences = generate(20, seed=4)
    tokens, tags = [[t for t, _ in s] for s in sentences], [[g for _, g in s] for s in sentences]
    calls = []

    class Counting(TokenTagger):
        def batch_loss(self, logits, targets, weight):
            calls.append(targets.shape)
            return super().batch_loss(logits, targets, weight)

    tagger = Counting(epochs=2, batch_size=8).fit(tokens, tags)
    assert len(calls) >= 2 * 2  # two epochs of at least two batches (and the validation passes)
    assert np.isfinite(tagger.loss_curve_).all() and len(tagger.loss_curve_) == 2
