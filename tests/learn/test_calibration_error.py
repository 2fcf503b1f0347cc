"""calibration_error against a direct per-bin loop (every strategy, norm and multiclass mode), known values, the
bootstrap interval; calibrate / apply_temperature against fit_temperature; reliability curves and the plots."""

import subprocess
import sys
import warnings

import numpy as np
import pytest
from conftest import assert_close
from hypothesis import given
from hypothesis import strategies as st
from matplotlib.figure import Figure
from sklearn.exceptions import ConvergenceWarning
from test_evaluate import predictions

import crossentropy as ce
from crossentropy.learn import apply_temperature, calibrate, calibration_error, evaluate, plots
from crossentropy.learn.metrics.bins import reliability_curves


def _direct(y, p, bins=15, strategy="uniform", norm="l1", multiclass="top_label"):
    """Bin membership by explicit interval tests, one sample at a time."""
    def one(score, outcome):
        if strategy == "uniform":
            edges = [b / bins for b in range(bins + 1)]
        else:
            edges = list(np.quantile(score, np.linspace(0, 1, bins + 1)))
        gaps, shares = [], []
        for b in range(bins):
            last = b == bins - 1
            members = [i for i in range(len(score))
                       if edges[b] <= score[i] < edges[b + 1] or (last and score[i] >= edges[b + 1])
                       or (strategy == "uniform" and last and score[i] == 1.0)]
            if strategy == "quantile":  # ties at an inner edge belong to the bin starting there
                members = [i for i in members if b == bins - 1 or score[i] < edges[b + 1]]
            if members:
                gaps.append(abs(np.mean([outcome[i] for i in members]) - np.mean([score[i] for i in members])))
                shares.append(len(members) / len(score))
        gaps, shares = np.array(gaps), np.array(shares)
        return {"l1": (shares * gaps).sum(), "l2": np.sqrt((shares * gaps**2).sum()), "max": gaps.max()}[norm]

    if multiclass == "top_label":
        return one(p.max(axis=1), (p.argmax(axis=1) == y).astype(float))
    return np.mean([one(p[:, k], (y == k).astype(float)) for k in range(p.shape[1])])


@given(predictions(), st.sampled_from(["uniform", "quantile"]), st.sampled_from(["l1", "l2", "max"]),
       st.sampled_from(["top_label", "classwise"]), st.integers(1, 20))
def test_every_variant_equals_a_direct_loop(case, strategy, norm, multiclass, bins):
    y, p = case
    value = calibration_error(y, p, bins=bins, strategy=strategy, norm=norm, multiclass=multiclass)
    assert_close(value, _direct(y, p, bins, strategy, norm, multiclass))
    assert 0 <= value <= 1


@given(predictions())
def test_norms_are_ordered_and_default_is_evaluate_ece(case):
    y, p = case
    l1, l2, mx = (calibration_error(y, p, norm=n) for n in ("l1", "l2", "max"))
    assert l1 <= l2 + 1e-12 and l2 <= mx + 1e-12  # power means of the same gaps
    assert_close(l1, evaluate(y, p).ece)


def test_known_values():
    y = np.array([0, 0, 1, 1])
    p = np.array([[0.9, 0.1], [0.9, 0.1], [0.9, 0.1], [0.2, 0.8]])
    assert_close(calibration_error(y, p), 3 / 4 * (0.9 - 2 / 3) + 1 / 4 * 0.2)
    assert_close(calibration_error(y, p, norm="l2"), np.sqrt(3 / 4 * (0.9 - 2 / 3) ** 2 + 1 / 4 * 0.2**2))
    assert_close(calibration_error(y, p, norm="max"), 0.9 - 2 / 3)
    # class-wise: class 1 has P = 0.1 (x3, one positive) and 0.8 (positive); class 0 mirrors it, same error
    assert_close(calibration_error(y, p, multiclass="classwise"), 3 / 4 * abs(1 / 3 - 0.1) + 1 / 4 * 0.2)
    # equal mass with 2 bins: edges are the 0, 1/2, 1 quantiles of (0.9, 0.9, 0.9, 0.8) = 0.8, 0.9, 0.9
    assert_close(calibration_error(y, p, bins=2, strategy="quantile"), 3 / 4 * (0.9 - 2 / 3) + 1 / 4 * 0.2)
    # perfectly calibrated: a score of 0.75 on a bin where three of four are right
    assert calibration_error([0, 0, 0, 1], [[0.75, 0.25]] * 4) == 0.0


def test_binary_one_column_and_string_labels():
    y = np.array(["no", "yes", "yes", "no", "yes"])
    p1 = np.array([0.1, 0.8, 0.6, 0.4, 0.3])
    p2 = np.column_stack([1 - p1, p1])
    assert calibration_error(y, p1) == calibration_error(y, p2)
    assert_close(calibration_error(y, p1, multiclass="classwise"), _direct(np.array([0, 1, 1, 0, 1]), p2,
                                                                           multiclass="classwise"))


def test_bootstrap_interval_is_a_percentile_interval_of_resamples():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 400)
    p = ce.softmax(rng.normal(size=(400, 3)) * 2 + 2 * np.eye(3)[y])
    result = calibration_error(y, p, ci=0.9, n_bootstrap=200, random_state=7)
    assert result.value == calibration_error(y, p) and result.ci == 0.9
    state = np.random.RandomState(7)
    draws = []
    for _ in range(200):
        i = state.randint(0, 400, 400)
        draws.append(_direct(y[i], p[i]))
    assert_close([result.low, result.high], np.quantile(draws, [0.05, 0.95]))
    assert result.low < result.high
    assert result == calibration_error(y, p, ci=0.9, n_bootstrap=200, random_state=7)  # reproducible
    wide = calibration_error(y[:50], p[:50], ci=0.9, n_bootstrap=200, random_state=7)
    assert wide.high - wide.low > result.high - result.low  # fewer samples, wider interval


@pytest.mark.parametrize("kwargs,message", [
    ({"bins": 0}, "bins must be a positive int"),
    ({"strategy": "equal"}, "strategy must be one of 'uniform', 'quantile'"),
    ({"norm": "l3"}, "norm must be one of"),
    ({"multiclass": "ovr"}, "multiclass must be one of"),
    ({"ci": 1.5}, r"ci must be a confidence level in \(0, 1\)"),
    ({"ci": 0.9, "n_bootstrap": 0}, "n_bootstrap must be a positive int"),
])
def test_bad_options(kwargs, message):
    with pytest.raises(ce.InputValueError, match=message):
        calibration_error([0, 1], [[0.6, 0.4], [0.3, 0.7]], **kwargs)


def _overconfident(seed=0, n=600, k=4):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k)) + 1.5 * np.eye(k)[y]
    return y, 4.0 * logits  # four times too confident


def test_calibrate_from_logits_and_from_probabilities():
    y, z = _overconfident()
    result = calibrate(y, logits=z)
    assert_close(result.temperature, ce.fit_temperature(z, y))
    assert result.temperature > 2  # undoes most of the factor 4
    assert_close(result.log_loss_before, ce.softmax_cross_entropy(z, y))
    assert_close(result.log_loss_after, ce.softmax_cross_entropy(z / result.temperature, y))
    assert result.log_loss_after < result.log_loss_before and result.ece_after < result.ece_before
    from_proba = calibrate(y, proba=ce.softmax(z))
    assert_close(from_proba.temperature, result.temperature)  # log(softmax(z)) is z shifted per row
    assert set(result.to_dict()) == {"temperature", "n_samples", "labels", "log_loss_before", "log_loss_after",
                                     "ece_before", "ece_after"}
    assert "temperature T =" in result.to_text() and "ECE" in result.to_text()


def test_calibrate_binary_with_string_labels_and_weights():
    rng = np.random.default_rng(1)
    y01 = rng.integers(0, 2, 300)
    z = 3.0 * (rng.normal(size=300) + (2 * y01 - 1))
    y = np.array(["neg", "pos"])[y01]
    result = calibrate(y, logits=z)
    assert_close(result.temperature, ce.fit_temperature(np.column_stack([np.zeros(300), z]), y01))
    assert result.labels == ["neg", "pos"]
    p = ce.sigmoid(z)
    assert_close(calibrate(y, proba=p).temperature, result.temperature, "minimizer")
    w = rng.integers(0, 3, 300).astype(float)
    assert_close(calibrate(y, logits=z, sample_weight=w).temperature, ce.fit_temperature(z, y01, sample_weight=w))


def test_apply_temperature():
    y, z = _overconfident(2)
    assert_close(apply_temperature(2.5, logits=z), ce.softmax(z / 2.5))
    assert_close(apply_temperature(2.5, proba=ce.softmax(z)), ce.softmax(z / 2.5))
    assert_close(apply_temperature(1.0, proba=ce.softmax(z)), ce.softmax(z))
    zb = z[:, 0]
    assert_close(apply_temperature(3.0, logits=zb), ce.sigmoid(zb / 3.0))
    assert_close(apply_temperature(3.0, proba=ce.sigmoid(zb)), ce.sigmoid(zb / 3.0))
    with pytest.raises(ce.InputValueError, match="temperature must be a positive finite number"):
        apply_temperature(0.0, logits=z)
    with pytest.raises(ce.InputValueError, match="exactly one of `logits` or `proba`"):
        apply_temperature(1.0)


def test_probabilities_passed_as_logits_warn():
    """Suspicious but usable: rows in [0, 1] that sum to 1 are almost surely probabilities; as logits they give
    nearly uniform output, so a UserWarning says to pass them as `proba`. Genuine logits do not warn."""
    y, z = _overconfident(3)
    with pytest.warns(UserWarning, match="`logits` look like probabilities"):
        flat = apply_temperature(1.0, logits=ce.softmax(z))
    assert flat.max() < 0.6  # what the mistake gives: near 1/3 each
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        apply_temperature(1.0, logits=z)
        apply_temperature(1.0, logits=np.full((4, 3), 0.3))  # in [0, 1], rows not summing to 1


def test_reliability_curves_binary_uses_positive_class():
    y = np.array([0, 1, 1, 0])
    p = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.7, 0.3]])
    curves = reliability_curves(y, p, bins=10)
    assert curves["kind"] == "positive"
    filled = np.array(curves["count"]) > 0
    assert_close(np.array(curves["confidence"])[filled], [0.1, 0.3, 0.6, 0.8])  # P(positive), not max(p)
    assert_close(np.array(curves["accuracy"])[filled], [0, 0, 1, 1])
    assert len(curves["per_class"]) == 2
    assert reliability_curves(np.array([0, 1, 2]), np.eye(3), bins=5)["kind"] == "top_label"


def test_plots_return_figures_and_label_the_loss(tmp_path):
    y, z = _overconfident(3, n=200, k=3)
    report = evaluate(y, ce.softmax(z))
    figs = [plots.reliability(report.reliability, report.ece),
            plots.reliability_per_class(report.reliability, ["a", "b", "c"]),
            plots.confusion(np.asarray(report.confusion_matrix), ["a", "b", "c"]),
            plots.loss_curve([1.0, 0.5], [1.1, 0.6], loss_name="focal loss")]
    assert all(isinstance(f, Figure) for f in figs)
    assert [t.get_text() for t in figs[-1].axes[0].get_legend().get_texts()] == ["training focal loss",
                                                                                 "validation focal loss"]
    assert len(figs[1].axes) == 6  # three classes, two panels each
    line = figs[0].axes[0].lines[1]  # the red line: NaN at empty bins, so matplotlib breaks it there
    counts = np.array(report.reliability["count"])
    assert np.isnan(line.get_ydata()[counts == 0]).all() and not np.isnan(line.get_ydata()[counts > 0]).any()
    paths = report.plot(tmp_path, per_class=True)
    assert {p.name for p in paths} == {"reliability.png", "confusion_matrix.png", "reliability_per_class.png"}


def test_focal_run_loss_curve_is_labelled_focal(tmp_path, monkeypatch):
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    model = ce.learn.CrossEntropyClassifier(hidden_layer_sizes=(), loss="focal", learning_rate=0.05, max_epochs=5,
                                            random_state=0)
    with pytest.warns(ConvergenceWarning):  # five epochs end training
        model.fit(X, y)
    captured = {}
    original = plots.loss_curve
    monkeypatch.setattr(plots, "loss_curve", lambda *a, **k: captured.setdefault("fig", original(*a, **k)))
    evaluate(y, model.predict_proba(X)).plot(tmp_path, estimator=model)
    assert captured["fig"].axes[0].get_ylabel() == "focal loss (nats)"


def test_importing_plots_keeps_the_users_backend():
    code = ("import matplotlib; matplotlib.use('svg'); import crossentropy.learn.plots, crossentropy.learn; "
            "crossentropy.learn.plots.reliability({'confidence': [0.5], 'accuracy': [1.0], 'count': [1]}, 0.5); "
            "print(matplotlib.get_backend())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "svg"
