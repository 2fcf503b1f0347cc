"""Text classification (issue 25): tokenization and TF-IDF, text columns in tables (roles, notes, overrides,
persistence), sparse input to CrossEntropyClassifier, the fastText-style model, and the comparisons with
scikit-learn's TfidfVectorizer + LogisticRegression that the issue's "done when" names."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from conftest import assert_close, tol
from hypothesis import given
from hypothesis import strategies as st
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, log_loss
from sklearn.pipeline import make_pipeline

from crossentropy.cli import main
from crossentropy.learn import CrossEntropyClassifier, TablePreprocessor
from crossentropy.learn.io.table import column_roles
from crossentropy.learn.io.text import TfidfText, ngrams, tokenize
from crossentropy.learn.models.persist import load_model, save_model
from crossentropy.learn.models.text_model import FastTextClassifier
from crossentropy.learn.samples.text import make_text_classification
from crossentropy.rules.errors import InputValueError

DATA = __import__("pathlib").Path(__file__).parent / "data"


def _best_sklearn_log_loss(train, test, vectorizer) -> float:
    Xa, Xb = vectorizer.fit_transform(train["text"]), vectorizer.transform(test["text"])
    return min(log_loss(test["label"], LogisticRegression(C=C, max_iter=3000).fit(Xa, train["label"])
                        .predict_proba(Xb)) for C in (1, 10, 100))


CORPORA = {"sentiment": ({}, TfidfVectorizer()), "topic": ({"task": "topic"}, TfidfVectorizer()),
           "chinese": ({"language": "zh"}, TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3)))}


# ---------------------------------------------------------------------------------------- tokens and TF-IDF
def test_tokenize_golden_values():
    assert tokenize("I DON'T like it!!! 3.5/5 — see https://a.b/c?d=1, mail x@y.org") == \
        ["i", "don't", "like", "it", "xxnum", "xxnum", "see", "xxurl", "mail", "xxemail"]
    assert tokenize("Café naïve résumé") == ["café", "naïve", "résumé"]
    assert tokenize("我很满意。とても良い") == ["我", "很", "满", "意", "と", "て", "も", "良", "い"]


def test_idf_and_rows_equal_scikit_learn_on_the_same_ngrams():
    texts = ["good film, good cast", "bad film", "not good at all", "我很满意"]
    ours = TfidfText(word_ngram_range=(1, 2), char_ngram_range=(2, 3)).fit(texts)
    words = TfidfVectorizer(analyzer=lambda t: ngrams(t, (1, 2), (2, 3))[0], sublinear_tf=True).fit(texts)
    chars = TfidfVectorizer(analyzer=lambda t: ngrams(t, (1, 2), (2, 3))[1], sublinear_tf=True).fit(texts)
    theirs = sparse.hstack([words.transform(texts), chars.transform(texts)]).toarray() / math.sqrt(2)
    names = list(words.get_feature_names_out()) + list(chars.get_feature_names_out())
    order = [names.index(t) for t in ours.vocabulary_]
    assert_close(ours.transform(texts).toarray(), theirs[:, order], "float64")
    assert_close(ours.idf_, np.concatenate([words.idf_, chars.idf_])[order], "float64")


@given(st.lists(st.text(max_size=40), min_size=1, max_size=6))
def test_tfidf_rows_have_norm_0_half_or_1_on_any_unicode(texts):
    X = TfidfText(max_features=100).fit(texts).transform(texts + ["", "🙂 \x00 \u200b"])
    norms = np.sqrt(X.multiply(X).sum(axis=1)).A1
    assert all(min(abs(n - v) for v in (0.0, math.sqrt(0.5), 1.0)) < tol("float64")["rtol"] * 100 for n in norms)


def test_tfidf_max_features_keeps_the_most_frequent_and_refuses_bad_values():
    tfidf = TfidfText(max_features=3).fit(["a b", "a c", "a b"])
    assert tfidf.vocabulary_ == ["c: a", "c: a ", "c:a "]  # in all 3 texts; ties by the n-gram, in sorted order
    with pytest.raises(InputValueError, match="max_features"):
        TfidfText(max_features=0)


# ---------------------------------------------------------------------------------------- tables with text
def _penguins_like(n=120, seed=0):
    """A penguins-shaped table with an ID column, a date column and a free-text comments column."""
    rng = np.random.default_rng(seed)
    species = rng.choice(["Adelie", "Gentoo", "Chinstrap"], n)
    bill = np.where(species == "Adelie", 38.8, np.where(species == "Gentoo", 47.5, 48.8)) + rng.normal(0, 2.5, n)
    flipper = np.where(species == "Gentoo", 217.0, 192.0) + rng.normal(0, 6, n)
    words = {"Adelie": "small dark bird near the rocks", "Gentoo": "large bird with a white stripe on the head",
             "Chinstrap": "thin black band under the chin"}
    comments = [f"{words[s]}, seen {rng.choice(['twice', 'at dawn', 'with chicks', 'alone'])} in nest {i}"
                for i, s in enumerate(species)]
    return pd.DataFrame({"Individual ID": [f"N{i // 2 + 1}A{i % 2 + 1}" for i in range(n)],
                         "Date Egg": pd.date_range("2007-11-09", periods=n, freq="D").strftime("%Y-%m-%d"),
                         "Island": rng.choice(["Biscoe", "Dream", "Torgersen"], n),
                         "Culmen Length (mm)": bill.round(1), "Flipper Length (mm)": flipper.round(0),
                         "Comments": comments, "Species": species})


def test_column_roles_find_id_date_text_and_take_overrides():
    frame = _penguins_like().drop(columns="Species")
    roles = column_roles(frame)
    assert roles == {"Individual ID": "dropped: id", "Date Egg": "dropped: date", "Island": "category",
                     "Culmen Length (mm)": "numeric", "Flipper Length (mm)": "numeric", "Comments": "text"}
    roles = column_roles(frame, categorical_columns=["Comments"], drop_columns=["Island"])
    assert roles["Comments"] == "category" and roles["Island"] == "dropped: drop_columns"
    with pytest.raises(InputValueError, match="not a feature column"):
        column_roles(frame, text_columns=["nope"])
    with pytest.raises(InputValueError, match="two roles"):
        column_roles(frame, text_columns=["Island"], drop_columns=["Island"])


def test_penguins_table_cli_prints_the_note_and_predicts_new_rows(tmp_path, capsys):
    frame = _penguins_like()
    frame.to_csv(tmp_path / "penguins.csv", index=False)
    code = main(["train", "--data", str(tmp_path / "penguins.csv"), "--target", "Species", "--model", "softmax",
                 "--out", str(tmp_path / "run"), "--quiet"])
    out = capsys.readouterr().out
    assert code == 0
    assert "dropped Individual ID (ID: one distinct value per row), Date Egg (a date)" in out
    assert "1 text (Comments)" in out and "n-grams that push" in out
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert set(metrics["top_ngrams"]) == {"Adelie", "Chinstrap", "Gentoo"}
    new = frame.drop(columns=["Individual ID", "Date Egg", "Species"]).head(5)  # dropped columns not needed
    new.to_csv(tmp_path / "new.csv", index=False)
    assert main(["predict", "--model", str(tmp_path / "run"), "--data", str(tmp_path / "new.csv"),
                 "--out", str(tmp_path / "pred.csv")]) == 0
    model = load_model(tmp_path / "run")
    pred = pd.read_csv(tmp_path / "pred.csv")
    assert_close(pred[["Adelie", "Chinstrap", "Gentoo"]].to_numpy(), model.predict_proba(new), "float64")


def test_drop_flag_and_text_override_reach_the_model(tmp_path, capsys):
    frame = _penguins_like()
    frame.to_csv(tmp_path / "p.csv", index=False)
    assert main(["train", "--data", str(tmp_path / "p.csv"), "--target", "Species", "--model", "softmax",
                 "--drop", "Comments", "--text", "Island", "--out", str(tmp_path / "run"), "--quiet"]) == 0
    assert "Comments (--drop)" in capsys.readouterr().out
    prep = load_model(tmp_path / "run")[0]
    assert prep.dropped_ == {"Individual ID": "id", "Date Egg": "date", "Comments": "drop_columns"}
    assert prep.kinds_[list(prep.feature_names_in_).index("Island")] == "text"
    # the reason as files saved before it named the parameter, and a tampered one
    info_path = tmp_path / "run" / "model.json"
    info = json.loads(info_path.read_text())
    info["preprocessing"]["dropped"]["Comments"] = "--drop"
    info_path.write_text(json.dumps(info))
    assert load_model(tmp_path / "run")[0].dropped_["Comments"] == "drop_columns"
    info["preprocessing"]["dropped"]["Comments"] = "because"
    info_path.write_text(json.dumps(info))
    with pytest.raises(InputValueError, match="dropped columns are malformed"):
        load_model(tmp_path / "run")


def test_text_pipeline_round_trips_through_save_model(tmp_path):
    frame = make_text_classification(120, random_state=3)
    model = make_pipeline(TablePreprocessor(max_features=500),
                          CrossEntropyClassifier((), max_epochs=30, random_state=0))
    with pytest.warns(Warning):
        model.fit(frame[["text"]], frame["label"])
    save_model(model, tmp_path)
    assert "pickle" not in (tmp_path / "model.json").read_text()
    assert_close(load_model(tmp_path).predict_proba(frame), model.predict_proba(frame), "exact")


def test_model_saved_by_the_code_at_48b8c2a_predicts_identically():
    folder = DATA / "model-48b8c2a"
    rows = pd.read_csv(folder / "rows.csv")
    expected = pd.read_csv(folder / "proba.csv").to_numpy()
    assert_close(load_model(folder).predict_proba(rows), expected, "exact")


# ---------------------------------------------------------------------------------------- sparse input
@pytest.mark.parametrize("hidden", [(), (16,)])
@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_sparse_input_trains_and_predicts_as_dense(hidden, fmt):
    rng = np.random.default_rng(0)
    X = sparse.random(80, 30, density=0.1, random_state=0, format=fmt)
    y = rng.integers(0, 3, 80)
    dense = CrossEntropyClassifier(hidden, max_epochs=15, random_state=0)
    sparse_clf = CrossEntropyClassifier(hidden, max_epochs=15, random_state=0)
    with pytest.warns(Warning):
        dense.fit(X.toarray(), y)
    with pytest.warns(Warning):
        sparse_clf.fit(X, y)
    assert_close(sparse_clf.predict_proba(X), dense.predict_proba(X.toarray()), "float64-reference")


# ---------------------------------------------------------------------------------------- done when
@pytest.mark.parametrize("corpus", sorted(CORPORA))
def test_cli_train_and_predict_match_tfidf_logistic_regression(corpus, tmp_path):
    kwargs, vectorizer = CORPORA[corpus]
    train, test = make_text_classification(800, random_state=0, **kwargs), \
        make_text_classification(400, random_state=1, **kwargs)
    train.to_csv(tmp_path / "train.csv", index=False)  # all of it trains, as scikit-learn's model does
    test.to_csv(tmp_path / "test.csv", index=False)  # --test reports on it; it selects nothing
    test.drop(columns="label").to_csv(tmp_path / "new.csv", index=False)
    assert main(["train", "--data", str(tmp_path / "train.csv"), "--target", "label", "--test",
                 str(tmp_path / "test.csv"), "--out", str(tmp_path / "run"), "--quiet"]) == 0
    assert main(["predict", "--model", str(tmp_path / "run"), "--data", str(tmp_path / "new.csv"),
                 "--out", str(tmp_path / "pred.csv")]) == 0
    pred = pd.read_csv(tmp_path / "pred.csv")
    classes = sorted(set(train["label"]))
    ours = log_loss(test["label"], pred[classes].to_numpy(), labels=classes)
    best = _best_sklearn_log_loss(train, test, vectorizer)
    assert ours <= best * (1 + tol("model-comparison")["rtol"]), (ours, best)


def test_classifier_behind_tfidf_vectorizer_matches_logistic_regression():
    train, test = make_text_classification(800, random_state=0), make_text_classification(400, random_state=1)
    pipe = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
                         CrossEntropyClassifier((100,), learning_rate=3e-3, early_stopping=True, random_state=0))
    pipe.fit(train["text"], train["label"])
    ours = log_loss(test["label"], pipe.predict_proba(test["text"]))
    best = _best_sklearn_log_loss(train, test, TfidfVectorizer())
    assert ours <= best * (1 + tol("model-comparison")["rtol"]), (ours, best)


def _accuracy_difference_standard_error(a: float, b: float, n: int) -> float:
    """The binomial standard error of the difference of two accuracies on the same ``n`` held-out texts (taken as
    independent, which overstates it a little when the two models err on the same texts)."""
    return math.sqrt((a * (1 - a) + b * (1 - b)) / n)


@pytest.mark.parametrize("corpus", sorted(CORPORA))
def test_task_text_reaches_the_tfidf_models_accuracy_and_log_loss(corpus, tmp_path):
    kwargs, _ = CORPORA[corpus]
    train, test = make_text_classification(800, random_state=0, **kwargs), \
        make_text_classification(400, random_state=1, **kwargs)
    train.to_csv(tmp_path / "train.csv", index=False)
    test.to_csv(tmp_path / "test.csv", index=False)
    for task, out in (("text", "fast"), ("classification", "tfidf")):
        assert main(["train", "--task", task, "--data", str(tmp_path / "train.csv"), "--target", "label",
                     "--test", str(tmp_path / "test.csv"), "--out", str(tmp_path / out), "--quiet"]) == 0
    fast = json.loads((tmp_path / "fast" / "metrics.json").read_text())
    tfidf = json.loads((tmp_path / "tfidf" / "metrics.json").read_text())
    assert fast["hardest_examples"][0]["contributions"] and fast["top_ngrams"]
    se = _accuracy_difference_standard_error(fast["accuracy"], tfidf["accuracy"], len(test))
    assert fast["accuracy"] >= tfidf["accuracy"] - se, (fast["accuracy"], tfidf["accuracy"], se)
    assert fast["log_loss"] <= tfidf["log_loss"] * (1 + tol("neural-model-comparison")["rtol"]), \
        (fast["log_loss"], tfidf["log_loss"])
    # a fastText run predicts like any other, and eval takes its predictions
    assert main(["predict", "--model", str(tmp_path / "fast"), "--data", str(tmp_path / "test.csv"),
                 "--out", str(tmp_path / "pred.csv")]) == 0
    pred = pd.read_csv(tmp_path / "pred.csv")
    assert_close(accuracy_score(test["label"], pred["predicted"]), fast["accuracy"], "exact")
    pred.drop(columns="predicted").to_csv(tmp_path / "proba.csv", index=False)
    test[["label"]].to_csv(tmp_path / "labels.csv", index=False)
    assert main(["eval", "--proba", str(tmp_path / "proba.csv"), "--labels", str(tmp_path / "labels.csv")]) == 0


def test_fasttext_model_saved_by_the_code_at_bb93ea4_predicts_identically():
    """A model saved before ``refit`` existed (its params lack it) loads and predicts as it did."""
    folder = DATA / "fasttext-bb93ea4"
    rows = pd.read_csv(folder / "rows.csv")
    expected = pd.read_csv(folder / "proba.csv")
    model = load_model(folder)
    assert "refit" not in json.loads((folder / "model.json").read_text())["params"]
    assert list(model.classes_) == list(expected.columns)
    assert_close(model.predict_proba(rows), expected.to_numpy(), "float64")


def test_refit_trains_on_all_texts_for_the_best_epoch_count():
    """``refit`` reruns training from scratch on every text for ``best_epoch_`` epochs; without it the model is
    the best epoch's of the run on the training share. Both runs record the same curves."""
    frame = make_text_classification(120, random_state=2)
    texts, y = list(frame["text"]), frame["label"]
    settings = {"epochs": 6, "n_buckets": 256, "dim": 8, "random_state": 0}
    refit = FastTextClassifier(**settings).fit(texts, y)
    kept = FastTextClassifier(refit=False, **settings).fit(texts, y)
    assert refit.best_epoch_ == kept.best_epoch_ and 1 <= refit.best_epoch_ <= 6
    assert len(refit.loss_curve_) == len(refit.validation_loss_curve_) == 6
    assert_close(np.array(refit.validation_loss_curve_), np.array(kept.validation_loss_curve_), "exact")
    assert not np.allclose(refit.predict_proba(texts), kept.predict_proba(texts))
    assert min(kept.validation_loss_curve_) == kept.best_loss_
