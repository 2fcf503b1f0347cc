"""crossentropy calibrate run in process (tests/clirun.py): the temperature equals a brute-force minimiser on a real
model's logits, probabilities give the same T, --apply writes calibrated probabilities and never overwrites without
--force, and bad input is one line with exit status 2. Also eval --per-class."""

import json

import numpy as np
import pytest
from clirun import fails, run
from conftest import assert_close
from reference import brute_force_temperature
from sklearn.datasets import load_breast_cancer, load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from test_cli import _png_has_content

import crossentropy as ce


@pytest.fixture(scope="module")
def wine_outputs(tmp_path_factory):
    """A deliberately overconfident model (almost no regularisation) on wine, with string class names."""
    folder = tmp_path_factory.mktemp("wine")
    X, y = load_wine(return_X_y=True)
    X_a, X_b, y_a, y_b = train_test_split(X, y, test_size=0.5, random_state=0, stratify=y)
    model = LogisticRegression(C=1e4, max_iter=20000).fit(X_a[:, :4], y_a)  # four features: room for error
    names = np.array(["barolo", "grignolino", "nebbiolo"])  # sorted as the columns: labels map by sort order
    val, test = slice(0, 45), slice(45, None)
    z = model.decision_function(X_b[:, :4])
    np.save(folder / "logits.npy", z[val])
    np.save(folder / "test_logits.npy", z[test])
    np.savetxt(folder / "proba.csv", ce.softmax(z[val]), delimiter=",", fmt="%.17g")
    (folder / "labels.csv").write_text("\n".join(names[y_b[val]]) + "\n")
    return folder, z[val], y_b[val], z[test]


def test_calibrate_equals_brute_force_minimiser(wine_outputs):
    folder, z, y, _ = wine_outputs
    out = json.loads(run("calibrate", "--logits", str(folder / "logits.npy"), "--labels", str(folder / "labels.csv"),
                         "--json").stdout)
    assert_close(out["temperature"], brute_force_temperature(z, y), "minimizer")
    assert out["labels"] == ["barolo", "grignolino", "nebbiolo"]
    assert out["log_loss_after"] < out["log_loss_before"]
    assert {"ece_before", "ece_after", "n_samples"} <= set(out)
    from_proba = json.loads(run("calibrate", "--proba", str(folder / "proba.csv"), "--labels",
                                str(folder / "labels.csv"), "--json").stdout)
    assert_close(from_proba["temperature"], out["temperature"], "minimizer")
    text = run("calibrate", "--logits", str(folder / "logits.npy"), "--labels", str(folder / "labels.csv")).stdout
    assert f"temperature T = {out['temperature']:.6g}" in text and "log loss (nats)" in text and "ECE" in text


def test_apply_writes_calibrated_probabilities_and_never_overwrites(wine_outputs, tmp_path):
    folder, _, _, z_test = wine_outputs
    args = ["calibrate", "--logits", str(folder / "logits.npy"), "--labels", str(folder / "labels.csv"), "--json",
            "--apply", str(folder / "test_logits.npy")]
    out = tmp_path / "calibrated.csv"
    t = json.loads(run(*args, "--out", str(out)).stdout)["temperature"]
    header = out.read_text().splitlines()[0]
    assert header == "barolo,grignolino,nebbiolo"
    assert_close(np.loadtxt(out, delimiter=",", skiprows=1), ce.softmax(z_test / t))
    before = out.read_bytes()
    fails(*args, "--out", str(out), message="already exists")
    assert out.read_bytes() == before
    run(*args, "--out", str(out), "--force")
    run(*args, "--out", str(tmp_path / "calibrated.npy"))
    assert_close(np.load(tmp_path / "calibrated.npy"), ce.softmax(z_test / t))


def test_binary_one_column_logits(tmp_path):
    X, y = load_breast_cancer(return_X_y=True)
    X_a, X_b, y_a, y_b = train_test_split(X[:, :3], y, test_size=0.5, random_state=0, stratify=y)
    z = 5 * LogisticRegression(max_iter=5000).fit(X_a, y_a).decision_function(X_b)  # overconfident by 5
    np.savetxt(tmp_path / "z.csv", z)
    np.savetxt(tmp_path / "y.csv", y_b, fmt="%d")
    out = json.loads(run("calibrate", "--logits", str(tmp_path / "z.csv"), "--labels", str(tmp_path / "y.csv"),
                         "--json", "--apply", str(tmp_path / "z.csv"), "--out", str(tmp_path / "p.csv")).stdout)
    assert_close(out["temperature"], brute_force_temperature(np.column_stack([np.zeros_like(z), z]), y_b),
                 "minimizer")
    assert out["temperature"] > 2
    # the positive class's column (its name is "1", or "1.0" while label files read integers as floats)
    assert float((tmp_path / "p.csv").read_text().splitlines()[0]) == 1
    assert_close(np.loadtxt(tmp_path / "p.csv", skiprows=1), ce.sigmoid(z / out["temperature"]))


def test_bad_input(wine_outputs, tmp_path):
    folder = wine_outputs[0]
    logits, labels = str(folder / "logits.npy"), str(folder / "labels.csv")
    fails("calibrate", "--labels", labels, message="one of the arguments --logits --proba is required")
    fails("calibrate", "--logits", logits, "--proba", logits, "--labels", labels, message="not allowed with")
    fails("calibrate", "--logits", logits, "--labels", labels, "--apply", logits, message="--apply and --out go")
    fails("calibrate", "--logits", logits, "--labels", labels, "--apply", logits, "--out", str(tmp_path / "p.txt"),
          message="use a .csv or .npy")
    np.save(tmp_path / "short.npy", np.zeros((3, 3)))
    fails("calibrate", "--logits", str(tmp_path / "short.npy"), "--labels", labels, message="same number of samples")
    np.save(tmp_path / "two.npy", np.zeros((45, 2)))
    fails("calibrate", "--logits", logits, "--labels", labels, "--apply", str(tmp_path / "two.npy"), "--out",
          str(tmp_path / "p.csv"), message="3 column(s) per row")
    assert not (tmp_path / "p.csv").exists()
    fails("calibrate", "--proba", logits, "--labels", labels, message="--proba must hold probabilities")
    # scores given as labels: one line naming --labels, in calibrate and eval (a traceback before)
    np.save(tmp_path / "scores.npy", np.linspace(0.5, 2.5, 45))
    for command in ("calibrate", "eval"):
        fails(command, "--logits", logits, "--labels", str(tmp_path / "scores.npy"),
              message="--labels must hold class labels (integers or text), but it holds the number 0.5")
    fails("calibrate", "--logits", str(tmp_path / "missing.npy"), "--labels", labels, message="no such file")


def test_probabilities_given_as_logits_warn_in_one_line(wine_outputs, tmp_path):
    """calibrate --logits of probabilities (rows in [0, 1] summing to 1) runs, with one warning naming the flags."""
    folder = wine_outputs[0]
    logits, labels = np.load(folder / "logits.npy"), str(folder / "labels.csv")
    np.save(tmp_path / "p.npy", ce.softmax(logits))
    proc = run("calibrate", "--logits", tmp_path / "p.npy", "--labels", labels)
    assert "warning: --logits look like probabilities" in proc.stderr and "pass them as --proba" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_eval_per_class_plot(wine_outputs, tmp_path):
    folder = wine_outputs[0]
    run("eval", "--proba", str(folder / "proba.csv"), "--labels", str(folder / "labels.csv"), "--out",
        str(tmp_path / "plots"), "--per-class")
    _png_has_content(tmp_path / "plots" / "reliability_per_class.png")


def test_help():
    proc = run("calibrate", "--help")
    for flag in ("--logits", "--proba", "--labels", "--json", "--apply", "--out", "--force"):
        assert flag in proc.stdout
