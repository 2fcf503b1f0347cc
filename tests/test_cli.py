"""The crossentropy command, run in process through crossentropy.cli.main (tests/clirun.py): train on each bundled
data set, eval against scikit-learn, info, every error path (exit 2, one line, no traceback), --help, and files never
overwritten."""

import json

import numpy as np
import pytest
from clirun import fails, run
from sklearn.datasets import load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.model_selection import train_test_split

from crossentropy.learn.models.persist import load_model


def _png_has_content(path):
    import matplotlib.image

    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(path)
    assert image.shape[0] > 200 and image.shape[1] > 200
    assert image[..., :3].std() > 0.05  # not blank: lines, bars and text
    assert len(np.unique(image[..., :3].reshape(-1, 3), axis=0)) > 20


@pytest.mark.parametrize("dataset,classes", [("digits", 10), ("iris", 3), ("wine", 3), ("breast_cancer", 2)])
def test_train_each_bundled_dataset(tmp_path, dataset, classes):
    out = tmp_path / "run"
    proc = run("train", "--data", dataset, "--epochs", "15", "--out", str(out), "--quiet")
    for word in ("precision", "recall", "f1-score", "support", "macro avg", "weighted avg", "nats", "bits", "ECE",
                 "hardest test examples"):
        assert word in proc.stdout
    names = {"metrics.json", "model.npz", "model.json", "loss_curve.png", "reliability.png", "confusion_matrix.png"}
    assert names <= {p.name for p in out.iterdir()}
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["dataset"] == dataset and metrics["epochs"] <= 15
    assert len(metrics["labels"]) == classes
    assert 0 <= metrics["ece"] <= 1 and metrics["log_loss_bits"] == pytest.approx(metrics["log_loss"] / np.log(2))
    assert metrics["accuracy"] > 0.8
    assert len(metrics["hardest_examples"]) == 5
    assert {"precision", "recall", "f1-score", "support"} <= set(metrics["classification_report"]["macro avg"])
    for name in ("loss_curve.png", "reliability.png", "confusion_matrix.png"):
        _png_has_content(out / name)
    model = load_model(out)  # npz + json, no pickle
    assert list(model[-1].classes_.astype(str)) == [str(v) for v in metrics["labels"]]


def test_train_csv_and_cnn(tmp_path):
    import pandas as pd

    wine = load_wine(as_frame=True).frame
    wine.to_csv(tmp_path / "wine.csv", index=False)
    proc = run("train", "--data", str(tmp_path / "wine.csv"), "--target", "target", "--model", "softmax",
               "--epochs", "30", "--out", str(tmp_path / "csv"), "--quiet")
    assert "wine: 178 samples, 13 features, 3 classes" in proc.stdout
    wine.to_parquet(tmp_path / "wine.parquet")
    run("train", "--data", str(tmp_path / "wine.parquet"), "--target", "target", "--epochs", "5",
        "--out", str(tmp_path / "pq"), "--quiet")
    run("train", "--data", "digits", "--model", "cnn", "--epochs", "2", "--out", str(tmp_path / "cnn"), "--quiet")
    metrics = json.loads((tmp_path / "cnn" / "metrics.json").read_text())
    assert metrics["model"] == "cnn" and metrics["accuracy"] > 0.5
    assert pd.read_parquet(tmp_path / "wine.parquet").shape == (178, 14)


def test_default_run_dir_gets_a_new_suffix(tmp_path):
    run("train", "--data", "iris", "--epochs", "3", "--quiet", cwd=tmp_path)
    run("train", "--data", "iris", "--epochs", "3", "--quiet", cwd=tmp_path)
    runs = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert len(runs) == 2 and all(r.startswith("iris-mlp-") for r in runs)


def test_eval_matches_sklearn_log_loss(tmp_path):
    X, y = load_wine(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0, stratify=y)
    model = LogisticRegression(max_iter=5000).fit(X_train, y_train)
    proba = model.predict_proba(X_test)
    np.save(tmp_path / "proba.npy", proba)
    np.savetxt(tmp_path / "proba.csv", proba, delimiter=",", header="0,1,2", comments="")  # columns named by label
    np.savetxt(tmp_path / "misnamed.csv", proba, delimiter=",", header="a,b,c", comments="")
    np.savetxt(tmp_path / "labels.csv", y_test, fmt="%d")
    expected = log_loss(y_test, proba)
    for source in ("proba.npy", "proba.csv"):
        proc = run("eval", "--proba", str(tmp_path / source), "--labels", str(tmp_path / "labels.csv"), "--json")
        metrics = json.loads(proc.stdout)
        assert metrics["log_loss"] == pytest.approx(expected, rel=1e-9)
        assert {"log_loss", "log_loss_bits", "accuracy", "ece", "brier_score", "classification_report"} <= set(metrics)
    fails("eval", "--proba", str(tmp_path / "misnamed.csv"), "--labels", str(tmp_path / "labels.csv"),
          message="the labels are numbers, so the columns of --proba must be named by those numbers")
    np.save(tmp_path / "logits.npy", model.decision_function(X_test))
    proc = run("eval", "--logits", str(tmp_path / "logits.npy"), "--labels", str(tmp_path / "labels.csv"),
               "--base", "2", "--out", str(tmp_path / "plots"))
    assert "bits" in proc.stdout and (tmp_path / "plots" / "reliability.png").exists()
    _png_has_content(tmp_path / "plots" / "confusion_matrix.png")


def test_info():
    proc = run("info", "--p", "1,0,0,0", "--q", "0.775,0.116,0.039,0.070", "--base", "2")
    assert "H(P, Q)   = 0.3677 bits" in proc.stdout and "H(P, Q) = H(P) + KL(P||Q)" in proc.stdout
    data = json.loads(run("info", "--p", "1,0,0,0", "--q", "0.775,0.116,0.039,0.070", "--base", "2",
                          "--json").stdout)
    assert round(data["cross_entropy"], 4) == 0.3677 and data["unit"] == "bits"


@pytest.mark.parametrize("command", [[], ["train"], ["eval"], ["predict"], ["info"], ["bench"]])
def test_help(command):
    proc = run(*command, "--help")
    assert proc.stdout.startswith("usage: crossentropy")
    for flag in {"train": ["--data", "--model", "--epochs", "--out"], "eval": ["--proba", "--labels", "--json"],
                 "predict": ["--model", "--data", "--out", "--force"], "info": ["--p", "--q", "--base"],
                 "bench": ["--quick"]}.get(command[0] if command else "", []):
        assert flag in proc.stdout


@pytest.fixture
def files(tmp_path):
    np.save(tmp_path / "good.npy", np.array([[0.9, 0.1], [0.2, 0.8]]))
    np.save(tmp_path / "bad_range.npy", np.array([[1.5, -0.5], [0.2, 0.8]]))
    np.save(tmp_path / "bad_sum.npy", np.array([[0.5, 0.6], [0.2, 0.8]]))
    np.save(tmp_path / "labels2.npy", np.array([0, 1]))
    np.save(tmp_path / "labels3.npy", np.array([0, 1, 1]))
    (tmp_path / "t.csv").write_text("a,b,label\n1,2,0\n3,4,1\n5,6,0\n7,8,1\n")
    return tmp_path


@pytest.mark.parametrize("args,message", [
    (["train", "--data", "mnist"], "unknown data set 'mnist'"),
    (["train", "--data", "missing.csv", "--target", "y"], "no such file for --data: missing.csv"),
    (["train", "--data", "{d}/t.csv", "--target", "nope"], "column 'nope' is not in t.csv"),
    (["train", "--data", "{d}/t.csv"], "--target is required"),
    (["train", "--data", "iris", "--model", "cnn"], "the cnn model needs image data"),
    (["train", "--data", "iris", "--optimizer", "lbfgs"], "invalid choice: 'lbfgs'"),
    (["train", "--data", "iris", "--label-smoothing", "1.5", "--out", "{d}/ls"], "The --label-smoothing parameter"),
    (["train", "--data", "iris", "--out", "/proc/forbidden/run"], "cannot write to /proc/forbidden/run"),
    (["eval", "--proba", "{d}/nothere.npy", "--labels", "{d}/labels2.npy"], "no such file for --proba"),
    (["eval", "--proba", "{d}/bad_range.npy", "--labels", "{d}/labels2.npy"],
     "--proba must hold probabilities in [0, 1]"),
    (["eval", "--proba", "{d}/bad_sum.npy", "--labels", "{d}/labels2.npy"], "row 0 sums to 1.1"),
    (["eval", "--proba", "{d}/good.npy", "--labels", "{d}/labels3.npy"],
     "--labels and --proba must have the same number of samples"),
    (["info", "--p", "0.5,0.4", "--q", "0.5,0.5"], "p must sum to 1"),
    (["info", "--p", "1,x", "--q", "1"], "expected comma-separated numbers"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
])
def test_errors_are_one_line_with_status_2(files, args, message):
    fails(*[a.replace("{d}", str(files)) for a in args], message=message)


def test_never_overwrites(files):
    out = files / "existing"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    fails("train", "--data", "iris", "--out", str(out), message="already exists and is not empty")
    assert (out / "keep.txt").read_text() == "mine" and len(list(out.iterdir())) == 1
    plots = files / "plots"
    plots.mkdir()
    (plots / "reliability.png").write_text("my own file")
    fails("eval", "--proba", str(files / "good.npy"), "--labels", str(files / "labels2.npy"), "--out", str(plots),
          message="already holds reliability.png")
    assert (plots / "reliability.png").read_text() == "my own file"
    run("train", "--data", "iris", "--epochs", "2", "--out", str(out), "--force", "--quiet")
    assert (out / "keep.txt").read_text() == "mine" and (out / "metrics.json").exists()
