"""evaluate / EvaluationReport and explain against scikit-learn's metrics and direct computations."""

import json
import warnings

import numpy as np
import pytest
from conftest import assert_close
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, brier_score_loss, classification_report, confusion_matrix, log_loss

import crossentropy as ce
from crossentropy.learn import evaluate, expected_calibration_error, feature_importance, hardest_examples


def _direct_ece(y, p, n_bins=15):
    conf, pred = p.max(axis=1), p.argmax(axis=1)
    total = 0.0
    for b in range(n_bins):
        lo, hi = b / n_bins, (b + 1) / n_bins
        members = [i for i in range(len(y)) if (lo <= conf[i] < hi) or (b == n_bins - 1 and conf[i] == 1.0)]
        if members:
            acc = np.mean([pred[i] == y[i] for i in members])
            total += len(members) / len(y) * abs(acc - np.mean(conf[members]))
    return total


@st.composite
def predictions(draw):
    n, k = draw(st.integers(2, 40)), draw(st.integers(2, 5))
    logits = draw(arrays(np.float64, (n, k), elements=st.floats(-5, 5)))
    y = draw(arrays(np.int64, n, elements=st.integers(0, k - 1)))
    return y, ce.softmax(logits)


@given(predictions())
def test_equals_sklearn_and_direct_ece(case):
    y, p = case
    k = p.shape[1]
    report = evaluate(y, p)
    assert_close(report.log_loss, log_loss(y, p, labels=range(k)), "float64-reference")
    assert_close(report.log_loss_bits, report.log_loss / np.log(2))
    assert_close(report.perplexity, np.exp(report.log_loss))
    assert report.accuracy == accuracy_score(y, p.argmax(axis=1))
    assert report.confusion_matrix == confusion_matrix(y, p.argmax(axis=1), labels=range(k)).tolist()
    expected = classification_report(y, p.argmax(axis=1), labels=range(k), output_dict=True, zero_division=0)
    assert report.classification_report["macro avg"] == pytest.approx(expected["macro avg"])
    assert_close(report.ece, _direct_ece(y, p), "float64-reference")
    assert_close(report.brier_score, brier_score_loss(y, p, labels=range(k)), "float64-reference")
    json.dumps(report.to_dict())  # JSON-safe


def test_binary_brier_and_one_column_proba():
    y = np.array([0, 1, 1, 0, 1])
    p1 = np.array([0.1, 0.8, 0.6, 0.4, 0.3])
    report = evaluate(y, p1)
    assert_close(report.brier_score, brier_score_loss(y, p1))
    assert_close(report.log_loss, log_loss(y, p1))
    assert report.n_samples == 5


def test_string_labels_and_text():
    y = np.array(["cat", "dog", "dog"])
    p = np.array([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    report = evaluate(y, p)
    assert report.labels == ["cat", "dog"]
    assert report.accuracy == pytest.approx(2 / 3)
    text = report.to_text()
    for word in ("precision", "recall", "f1-score", "support", "macro avg", "weighted avg", "nats", "bits", "ECE"):
        assert word in text
    assert report.to_text(base=2).index("bits") < report.to_text(base=2).index("nats")


def test_golden_ece():
    y = np.array([0, 0, 1, 1])
    p = np.array([[0.9, 0.1], [0.9, 0.1], [0.9, 0.1], [0.2, 0.8]])
    ece, _, _, counts = expected_calibration_error(y, p)
    # bin of 0.9: 3 samples, accuracy 2/3, confidence 0.9; bin of 0.8: 1 sample, accuracy 1, confidence 0.8
    assert_close(ece, 3 / 4 * abs(2 / 3 - 0.9) + 1 / 4 * abs(1 - 0.8))
    assert counts.sum() == 4


def test_plots_are_written(tmp_path):
    X, y = load_iris(return_X_y=True)
    model = ce.learn.CrossEntropyClassifier(hidden_layer_sizes=(), learning_rate=0.05, max_epochs=30,
                                            random_state=0).fit(X, y)
    paths = evaluate(y, model.predict_proba(X)).plot(tmp_path, estimator=model)
    assert {p.name for p in paths} == {"reliability.png", "confusion_matrix.png", "loss_curve.png"}
    for path in paths:
        data = path.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


PENGUINS = ["Adelie Penguin (Pygoscelis adeliae)", "Chinstrap penguin (Pygoscelis antarctica)",
            "Gentoo penguin (Pygoscelis papua)"]


def _overlap(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


@pytest.mark.parametrize("names", [PENGUINS, [f"{name} {i}" for i in range(4) for name in PENGUINS],
                                   ["0", "1", "2"], ["a" * 60, "b"]])
def test_long_class_names_do_not_overlap_on_the_confusion_matrix(tmp_path, names):
    """Issue 21 #21: the raw penguins species names (and 12 of them, and a 60-character one) neither overlap each
    other nor the matrix, stay inside the figure, and saving passes no layout warning through."""
    from crossentropy.learn import plots

    k = len(names)
    fig = plots.confusion(np.arange(k * k).reshape(k, k), names)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plots.save(fig, tmp_path / "confusion.png")
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    image, figure = ax.get_window_extent(renderer), fig.bbox
    for axis in (ax.xaxis, ax.yaxis):
        boxes = [t.get_window_extent(renderer) for t in axis.get_ticklabels() if t.get_text()]
        assert len(boxes) == k
        assert not any(_overlap(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
        assert not any(_overlap(box, image) for box in boxes)
        assert all(figure.x0 <= b.x0 and b.x1 <= figure.x1 and figure.y0 <= b.y0 and b.y1 <= figure.y1 for b in boxes)


def test_hardest_examples_table_aligns_with_long_names():
    """Issue 21 #21: every row of the hardest-examples table has its columns at the header's positions."""
    from crossentropy.learn.metrics.explain import format_hardest

    y = np.array(PENGUINS)[[0, 1, 2, 2]]
    p = np.array([[0.2, 0.7, 0.1], [0.6, 0.3, 0.1], [0.1, 0.1, 0.8], [0.5, 0.4, 0.1]])
    hardest = hardest_examples(y, p, k=4, labels=PENGUINS)
    lines = format_hardest(hardest).splitlines()
    assert len(lines) == 5 and len({len(line) for line in lines}) == 1
    ends = [lines[0].index(word) + len(word) for word in ("row", " true", "predicted", "p(true)", "(nats)")]
    for line in lines[1:]:  # each right-aligned column ends where its header ends
        assert all(line[e - 1] != " " and (e == len(line) or line[e] == " ") for e in ends)
    for h, line in zip(hardest, lines[1:], strict=True):
        assert f" {h['label']} {h['predicted']} " in f" {' '.join(line.split())} " and f"{h['p_true']:.4f}" in line


def test_explain():
    X, y = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=500).fit(X, y)
    proba = model.predict_proba(X)
    hard = hardest_examples(y, proba, k=3)
    losses = -np.log(proba[np.arange(len(y)), y])
    assert [h["index"] for h in hard] == list(np.argsort(-losses)[:3])
    assert_close([h["loss"] for h in hard], np.sort(losses)[::-1][:3])
    importance = feature_importance(model, X, y, n_repeats=3, feature_names=["sl", "sw", "pl", "pw"])
    assert importance[0]["feature"] in {"pl", "pw"}  # petal measurements carry iris
    assert importance[0]["importance"] > 0.1
    assert [d["importance"] for d in importance] == sorted(d["importance"] for d in importance)[::-1]


@pytest.mark.parametrize("call,message", [
    (lambda: evaluate([0, 1], [[0.5, 0.5]]), r"same number of samples, but got 2 labels and 1 rows"),
    (lambda: evaluate([0, 1], [[0.5, 0.65], [0.5, 0.5]]), r"row 0 sums to 1.15, more than 0.1 away.*Normalize"),
    (lambda: evaluate([0, 1], [[0.9, 0.9], [0.5, 0.5]]), r"row 0 sums to 1.8.*per-class scores"),
    (lambda: evaluate([0, 1], [[0.0, 0.0], [0.5, 0.5]]), r"row 0 sums to 0, more than 0.1 away"),
    (lambda: evaluate([0, 1], [[1.5, -0.5], [0.5, 0.5]]), r"`proba` must hold probabilities in \[0, 1\].*logits"),
    (lambda: evaluate([0, 1], [[np.nan, 0.5], [0.5, 0.5]]), r"`proba` contains NaN"),
    (lambda: evaluate([], np.zeros((0, 2))), r"`y_true` is empty"),
    (lambda: evaluate(["a", "b", "c"], [[0.5, 0.5]] * 3), r"pass labels="),
    (lambda: evaluate([0, 5], [[0.5, 0.5]] * 2, labels=[0, 1]), r"`y_true` has labels \[5\]"),
    (lambda: hardest_examples([0, 1], [[0.5, 0.5]] * 2, k=0), r"k must be a positive int"),
    # issue 12 #3: integer labels outside 0..K-1 are not mapped onto columns by sorted order; duplicates refused
    (lambda: evaluate([0, 2, 3], np.full((3, 3), 1 / 3)), r"integer labels \[3\] outside 0..2"),
    (lambda: evaluate([0, 1, 1], np.full((3, 3), 1 / 3), labels=[0, 0, 1]), r"\[0\] appear more than once"),
    # continuous labels (scores passed as labels) are refused by name, not left to scikit-learn's ValueError
    (lambda: evaluate([0.5, 1.5], [[0.5, 0.5]] * 2), r"`y_true` must hold class labels.*0.5, which is not a whole"),
    (lambda: evaluate([0.0, np.nan], [[0.5, 0.5]] * 2), r"`y_true` must hold class labels.*nan"),
    # a binary (n,) column is checked as given: the range names its own values, not 1 - p
    (lambda: evaluate([0, 1, 1], [0.0, 1.0, 2.0]), r"values range from 0 to 2\."),
])
def test_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_rows_slightly_off_one_warn_and_are_used_as_given_as_in_scikit_learn():
    """Issue 21 #9 (decision): rows off 1 by more than float32 rounding and at most 0.1 give one UserWarning (as
    scikit-learn's log_loss and the core do) and are used as given: the log loss equals scikit-learn's."""
    y, p = [0, 1, 1], np.array([[0.5, 0.45], [0.2, 0.85], [0.4, 0.6]])
    with pytest.warns(UserWarning, match="sum to one"):
        theirs = log_loss(y, p)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = evaluate(y, p)
    assert [str(w.message)[:42] for w in caught] == ["proba: 2 of 3 rows do not sum to 1 (first "]
    assert_close(report.log_loss, theirs, "float64-reference")
    assert_close(report.brier_score, brier_score_loss(y, p[:, 1]), "float64-reference")
    with warnings.catch_warnings():  # float32 rounding of a saved file passes silently
        warnings.simplefilter("error")
        evaluate(y, np.array([[0.7, 0.3], [0.1, 0.9], [0.35, 0.65]], np.float32) + np.float32(1e-5))


def test_far_off_rows_are_refused_where_scikit_learn_only_warns():
    """Issue 21 #9 (documented difference): a row further than 0.1 from 1 is an InputValueError; scikit-learn's
    log_loss warns and scores it."""
    y, p = [0, 1], np.array([[0.9, 0.9], [0.2, 0.7]])
    with pytest.warns(UserWarning, match="sum to one"):
        assert np.isfinite(log_loss(y, p))
    with pytest.raises(ce.InputValueError, match="row 0 sums to 1.8"):
        evaluate(y, p)


def test_labels_name_the_columns_in_their_given_order_where_log_loss_sorts_them():
    """Issue 21 #9 (decision): labels= names the columns in the order given (as classification_report's and
    confusion_matrix's labels= order their rows); scikit-learn's log_loss(labels=...) takes the columns to be the
    sorted labels. So evaluate(y, p, labels=L) equals log_loss on the columns reordered to sorted(L)."""
    y = ["cat", "dog", "ant", "dog"]
    labels = ["dog", "cat", "ant"]
    p = np.array([[0.2, 0.7, 0.1], [0.6, 0.3, 0.1], [0.1, 0.1, 0.8], [0.5, 0.4, 0.1]])
    report = evaluate(y, p, labels=labels)
    assert report.labels == labels and report.accuracy == 1.0
    order = np.argsort(labels)  # the columns of p in sorted-label order
    assert_close(report.log_loss, log_loss(y, p[:, order], labels=labels), "float64-reference")
    assert not np.isclose(report.log_loss, log_loss(y, p, labels=labels))  # the same p read as sorted: differs
    assert report.confusion_matrix == confusion_matrix(y, np.array(labels)[p.argmax(1)], labels=labels).tolist()


def test_labels_outside_columns_with_explicit_labels():
    """issue 12 #3: with labels= the same data scores label 2 against its own column, not column 1."""
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.2, 0.2, 0.6]])
    report = evaluate([0, 2, 3], p, labels=[0, 2, 3])
    assert_close(report.log_loss, log_loss([0, 2, 3], p, labels=[0, 2, 3]))
    assert report.labels == [0, 2, 3] and all(type(v) is int for v in report.to_dict()["labels"])


@pytest.mark.parametrize("p_true,finite", [(1e-320, True), (1e-300, True), (0.0, False)])
def test_perplexity_overflow_is_inf_not_an_error(p_true, finite):
    """issue 12 #12: a mean log loss above log(float64 max) ~ 709.78 nats: perplexity inf, no OverflowError;
    to_dict is standard JSON (null plus a "non_finite" entry)."""
    report = evaluate([0], [[p_true, 1.0 - p_true]])
    nats = -np.log(p_true) if p_true else np.inf
    assert_close(report.log_loss, nats)
    assert report.perplexity == (np.exp(nats) if nats < 709 else np.inf)
    data = report.to_dict()
    text = json.dumps(data, allow_nan=False)
    assert json.loads(text)["perplexity"] == (None if nats > 709 else data["perplexity"])
    expected = {"perplexity": "inf"} if nats > 709 else {}
    if not finite:
        expected = {"log_loss": "inf", "log_loss_bits": "inf", "perplexity": "inf"}
    assert data["non_finite"] == expected
    assert "inf (exp of the log loss overflows float64 above 709.78 nats)" in report.to_text() or nats < 709


def test_to_text_any_base():
    report = evaluate([0, 1, 1], [[0.9, 0.1], [0.2, 0.8], [0.4, 0.6]])
    for base, unit in ((None, "nats"), (2, "bits"), (10, "hartleys"), (0.5, "log-base-0.5 units")):
        first = report.log_loss / (np.log(base) if base else 1.0)
        assert f"{first:.4f} {unit}" in report.to_text(base=base).split("cross-entropy (log loss)")[1].split("\n")[0]


def test_labels_from_columns():
    from crossentropy.learn.metrics.evaluate import labels_from_columns

    assert labels_from_columns(["2", "0", "1"], np.array([0, 1, 2])) == [2, 0, 1]
    assert labels_from_columns(["b", "a"], np.array(["a", "b"])) == ["b", "a"]
    assert labels_from_columns(["1.0", "0.0"], np.array([0, 1])) == [1, 0]
    with pytest.raises(ValueError, match="label 'c' has no column in proba"):
        labels_from_columns(["a", "b"], np.array(["a", "c"]))
    with pytest.raises(ValueError, match="must name each class once"):
        labels_from_columns(["0", "0.0"], np.array([0]))
    with pytest.raises(ValueError, match="must be named by those numbers"):
        labels_from_columns(["a", "b"], np.array([0, 1]))
