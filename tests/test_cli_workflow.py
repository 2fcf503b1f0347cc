"""The data scientist's workflow on a real table with text columns and missing values (tests/tables.py), run in
process (tests/clirun.py): eval reads files by name, train takes the table as it is, predict applies the saved run,
failures leave nothing behind; and the CLI reproducers of issue 12 (#13-#20)."""

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from clirun import fails, run
from conftest import assert_close
from sklearn.compose import make_column_transformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from tables import wine_table

from crossentropy.learn import load_model


def strict_json(text: str):
    """json.loads that refuses the non-standard NaN / Infinity / -Infinity."""
    def refuse(name):
        raise AssertionError(f"non-standard JSON constant {name}")
    return json.loads(text, parse_constant=refuse)


@pytest.fixture(scope="module")
def wine(tmp_path_factory):
    """The table, a reference scikit-learn model's test-set probabilities, and files for the CLI."""
    d = tmp_path_factory.mktemp("wine")
    table = wine_table()
    table.to_csv(d / "wine.csv", index=False)
    X, y = table.drop(columns="cultivar"), table["cultivar"].to_numpy()
    text = ["colour", "acidity"]
    numeric = [c for c in X.columns if c not in text]
    prep = make_column_transformer(
        (make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
        (make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")), text))
    model = make_pipeline(prep, LogisticRegression(max_iter=2000)).fit(X[::2], y[::2])
    proba = model.predict_proba(X[1::2])
    return {"dir": d, "table": table, "proba": proba, "classes": list(model.classes_), "y": y[1::2]}



def only_convergence_notes(stderr: str) -> None:
    """A successful run's stderr holds at most one-line notes that training hit --epochs (issue 15's
    ConvergenceWarning, "raise max_epochs"): no other warning, nothing spread over several lines."""
    for line in stderr.splitlines():
        assert line.startswith("crossentropy: warning:") and line.endswith("(ConvergenceWarning)"), stderr

def test_eval_matches_columns_by_name(wine):
    d, proba, classes, y = wine["dir"], wine["proba"], wine["classes"], wine["y"]
    expected = log_loss(y, proba, labels=classes)
    order = [2, 0, 1]  # reordered, named columns
    pd.DataFrame(proba[:, order], columns=[classes[i] for i in order]).to_csv(d / "proba.csv", index=False)
    pd.Series(y, name="cultivar").to_csv(d / "labels.csv")  # pandas' default: an unnamed index column and a header
    metrics = strict_json(run("eval", "--proba", str(d / "proba.csv"), "--labels", str(d / "labels.csv"),
                              "--json").stdout)
    assert_close(metrics["log_loss"], expected)
    assert metrics["labels"] == [classes[i] for i in order]
    # the unordered reading (the old behaviour) would be far off
    assert abs(log_loss(y, proba[:, order], labels=classes) - expected) > 0.5
    # several named columns: --labels-column picks one
    pd.DataFrame({"id": np.arange(len(y)), "cultivar": y}).to_csv(d / "labels2.csv", index=False)
    fails("eval", "--proba", str(d / "proba.csv"), "--labels", str(d / "labels2.csv"),
          message="say which holds the labels with --labels-column")
    metrics = strict_json(run("eval", "--proba", str(d / "proba.csv"), "--labels", str(d / "labels2.csv"),
                              "--labels-column", "cultivar", "--json").stdout)
    assert_close(metrics["log_loss"], expected)
    fails("eval", "--proba", str(d / "proba.csv"), "--labels", str(d / "labels2.csv"), "--labels-column", "nope",
          message="has no column 'nope'")
    # a label without a column is named
    pd.DataFrame(proba[:, :2] / proba[:, :2].sum(1, keepdims=True), columns=classes[:2]).to_csv(
        d / "two.csv", index=False)
    fails("eval", "--proba", str(d / "two.csv"), "--labels", str(d / "labels.csv"),
          message=f"label '{classes[2]}' has no column in --proba")


def test_eval_headerless_text_labels_with_header(wine):
    """A one-column label CSV with a header, over text labels: the header is not read as a label."""
    d, proba, classes, y = wine["dir"], wine["proba"], wine["classes"], wine["y"]
    np.save(d / "proba.npy", proba)
    pd.Series(y, name="cultivar").to_csv(d / "labels_noindex.csv", index=False)
    metrics = strict_json(run("eval", "--proba", str(d / "proba.npy"), "--labels", str(d / "labels_noindex.csv"),
                              "--json").stdout)
    assert_close(metrics["log_loss"], log_loss(y, proba, labels=classes))
    assert metrics["n_samples"] == len(y)


def test_integer_labels_stay_integers(tmp_path):
    """issue 12 #14: integer labels from a CSV, not covering every column, stay integers (JSON, plot axes)."""
    rng = np.random.default_rng(0)
    proba = rng.dirichlet(np.ones(4), size=30)
    y = np.array([0, 1, 3] * 10)  # class 2 never occurs
    pd.DataFrame(proba, columns=["0", "1", "2", "3"]).to_csv(tmp_path / "p.csv", index=False)
    pd.Series(y, name="y").to_csv(tmp_path / "y.csv")
    metrics = strict_json(run("eval", "--proba", str(tmp_path / "p.csv"), "--labels", str(tmp_path / "y.csv"),
                              "--json").stdout)
    assert metrics["labels"] == [0, 1, 2, 3] and all(type(v) is int for v in metrics["labels"])
    assert_close(metrics["log_loss"], log_loss(y, proba, labels=[0, 1, 2, 3]))
    assert set(metrics["classification_report"]) >= {"0", "1", "2", "3"}  # "0", not "0.0"
    np.savetxt(tmp_path / "y_plain.csv", y, fmt="%d")
    np.savetxt(tmp_path / "p_plain.csv", proba, delimiter=",")
    metrics = strict_json(run("eval", "--proba", str(tmp_path / "p_plain.csv"), "--labels",
                              str(tmp_path / "y_plain.csv"), "--json").stdout)
    assert metrics["labels"] == [0, 1, 2, 3]


@pytest.mark.parametrize("base,unit", [("10", "hartleys"), ("0.5", "log-base-0.5 units"), ("3", "log-base-3 units")])
def test_eval_any_base(wine, base, unit):
    d = wine["dir"]
    np.save(d / "proba.npy", wine["proba"])
    pd.Series(wine["y"]).to_csv(d / "y_base.csv", index=False, header=False)
    out = run("eval", "--proba", str(d / "proba.npy"), "--labels", str(d / "y_base.csv"), "--base", base).stdout
    nats = log_loss(wine["y"], wine["proba"], labels=wine["classes"])
    line = next(s for s in out.splitlines() if s.startswith("cross-entropy"))
    assert f"{nats / np.log(float(base)):.4f} {unit}" in line


@pytest.mark.parametrize("base", ["1", "0", "-2", "inf", "two"])
def test_eval_bad_base(wine, base):
    d = wine["dir"]
    np.save(d / "proba.npy", wine["proba"])
    fails("eval", "--proba", str(d / "proba.npy"), "--labels", str(d / "y_base.csv"), "--base", base,
          message="--base")


def test_train_then_predict_on_reordered_columns(wine, tmp_path):
    d = wine["dir"]
    run_dir = tmp_path / "run"
    proc = run("train", "--data", str(d / "wine.csv"), "--target", "cultivar", "--epochs", "40", "--out",
               str(run_dir), "--quiet")
    assert "wine: 178 samples, 7 features, 3 classes" in proc.stdout
    only_convergence_notes(proc.stderr)  # issue 12 #18: no multi-line warnings on a successful run
    metrics = strict_json((run_dir / "metrics.json").read_text())
    assert metrics["accuracy"] > 0.85
    info = json.loads((run_dir / "model.json").read_text())
    kinds = {c["name"]: c["kind"] for c in info["preprocessing"]["columns"]}
    assert kinds == {"alcohol": "numeric", "magnesium": "numeric", "flavanoids": "numeric", "proline": "numeric",
                     "hue": "numeric", "colour": "category", "acidity": "category"}
    table = wine["table"]
    features = table.drop(columns="cultivar")
    features.to_csv(tmp_path / "new.csv", index=False)
    shuffled = features[features.columns[::-1]].assign(extra=np.arange(len(features)), cultivar="?")
    shuffled.to_csv(tmp_path / "new_reordered.csv", index=False)
    first = run("predict", "--model", str(run_dir), "--data", str(tmp_path / "new.csv")).stdout
    run("predict", "--model", str(run_dir), "--data", str(tmp_path / "new_reordered.csv"), "--out",
        str(tmp_path / "pred.csv"))
    assert (tmp_path / "pred.csv").read_text() == first  # identical predictions
    pred = pd.read_csv(tmp_path / "pred.csv")
    assert list(pred.columns) == ["predicted", "barbera", "barolo", "grignolino"]
    expected = load_model(run_dir).predict_proba(features)
    assert_close(pred[["barbera", "barolo", "grignolino"]].to_numpy(), expected)
    assert (pred["predicted"] == np.array(["barbera", "barolo", "grignolino"])[expected.argmax(1)]).all()
    # never overwrites without --force; a missing feature column is named
    fails("predict", "--model", str(run_dir), "--data", str(tmp_path / "new.csv"), "--out",
          str(tmp_path / "pred.csv"), message="pred.csv already exists; choose a new file, or pass --force")
    run("predict", "--model", str(run_dir), "--data", str(tmp_path / "new.csv"), "--out",
        str(tmp_path / "pred.csv"), "--force")
    features.drop(columns="acidity").to_csv(tmp_path / "lacking.csv", index=False)
    fails("predict", "--model", str(run_dir), "--data", str(tmp_path / "lacking.csv"), message="['acidity']")
    fails("predict", "--model", str(tmp_path), "--data", str(tmp_path / "new.csv"), message="has no saved model")


def test_failed_train_leaves_no_directory(wine, tmp_path):
    d = wine["dir"]
    one_class = wine["table"].assign(cultivar="barolo")
    one_class.to_csv(tmp_path / "one.csv", index=False)
    fails("train", "--data", str(tmp_path / "one.csv"), "--target", "cultivar", message="a single class",
          cwd=tmp_path)
    assert not (tmp_path / "runs").exists()
    # a failure during training (here a simulated bug) removes the run directory it created, and shows its traceback
    code = ("import sys, crossentropy.learn.workflow as w\n"
            "def boom(*a, **k): raise RuntimeError('simulated failure')\n"
            "w.train = boom\n"
            "from crossentropy.cli import main\n"
            f"sys.exit(main(['train', '--data', {str(d / 'wine.csv')!r}, '--target', 'cultivar', '--quiet']))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 1 and "Traceback" in proc.stderr and "simulated failure" in proc.stderr
    assert (tmp_path / "runs").exists() and list((tmp_path / "runs").iterdir()) == []


def test_core_only_install_says_what_to_install(tmp_path):
    code = ("import sys\nsys.modules['sklearn'] = None  # as if scikit-learn were not installed\n"
            "from crossentropy.cli import main\nsys.exit(main(sys.argv[1:]))\n")
    for command in (["train", "--data", "iris"], ["eval", "--proba", "p.npy", "--labels", "y.npy"]):
        proc = subprocess.run([sys.executable, "-c", code, *command], capture_output=True, text=True, cwd=tmp_path)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        assert "pip install 'crossentropy[learn]'" in proc.stderr and len(proc.stderr.splitlines()) == 1
    proc = subprocess.run([sys.executable, "-c", code, "info", "--p", "1,0", "--q", "0.5,0.5"], capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr


def test_a_bug_shows_its_traceback(tmp_path):
    """Only the library's InputError (and usage errors) become exit 2; a plain ValueError from a bug does not."""
    np.save(tmp_path / "p.npy", np.array([[0.9, 0.1], [0.2, 0.8]]))
    np.save(tmp_path / "y.npy", np.array([0, 1]))
    code = ("import sys, crossentropy.learn.metrics.evaluate\n"
            "def boom(*a, **k): raise ValueError('a bug, not bad input')\n"
            "sys.modules['crossentropy.learn.metrics.evaluate'].evaluate = boom\n"
            "from crossentropy.cli import main\nsys.exit(main(sys.argv[1:]))\n")
    proc = subprocess.run([sys.executable, "-c", code, "eval", "--proba", "p.npy", "--labels", "y.npy"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 1 and "Traceback" in proc.stderr and "a bug, not bad input" in proc.stderr


# ------------------------------------------------------------------------------------------ issue 12, CLI items
@pytest.fixture
def odd(tmp_path):
    np.save(tmp_path / "empty.npy", np.zeros((0, 2)))
    (tmp_path / "zero_bytes.npy").write_bytes(b"")
    np.save(tmp_path / "bool.npy", np.array([[True, False], [False, True]]))
    np.save(tmp_path / "text.npy", np.array([["a", "b"], ["c", "d"]]))
    np.save(tmp_path / "y2.npy", np.array([0, 1]))
    (tmp_path / "header_only.csv").write_text("a,b\n")
    (tmp_path / "short_row.csv").write_text("0.5,0.5\n0.2\n")
    pd.DataFrame({"x": pd.Series([], dtype=float), "y": pd.Series([], dtype=int)}).to_parquet(
        tmp_path / "zero.parquet")
    return tmp_path


@pytest.mark.parametrize("args,message", [
    (["eval", "--proba", "{d}/empty.npy", "--labels", "{d}/y2.npy"], "non-empty"),  # 13: empty .npy
    (["eval", "--proba", "{d}/zero_bytes.npy", "--labels", "{d}/y2.npy"], "the file is empty"),
    (["train", "--data", "{d}/zero.parquet", "--target", "y", "--out", "{d}/r"], "has a header but no data rows"),
    (["train", "--data", "iris", "--epochs", "0"], "--epochs: must be a positive int"),  # 15
    (["train", "--data", "iris", "--lr", "0"], "--lr: must be a positive float"),
    (["train", "--data", "iris", "--batch-size", "0"], "--batch-size: must be a positive int"),
    (["eval", "--proba", "{d}/header_only.csv", "--labels", "{d}/y2.npy"], "has a header but no data rows"),  # 19
    (["eval", "--proba", "{d}/bool.npy", "--labels", "{d}/y2.npy"], "holds bool values"),
    (["eval", "--proba", "{d}/short_row.csv", "--labels", "{d}/y2.npy"], "line 2, column 2 is empty"),
    (["eval", "--proba", "{d}/text.npy", "--labels", "{d}/y2.npy"], "holds <U1 values"),
])
def test_issue12_cli_errors(odd, args, message):
    line = fails(*[a.replace("{d}", str(odd)) for a in args], message=message, cwd=odd)
    assert "allow_pickle" not in line and "NaN" not in line
    assert not (odd / "runs").exists() and not (odd / "r").exists()


def test_object_npy_is_not_unpickled(tmp_path):
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    np.save(tmp_path / "y.npy", np.array([0, 1]))
    line = fails("eval", "--proba", str(tmp_path / "obj.npy"), "--labels", str(tmp_path / "y.npy"),
                 message="holds Python objects")
    assert "allow_pickle=True" not in line


def test_tiny_probability_gives_inf_perplexity_and_valid_json(tmp_path):
    """issue 12 #12, #13, #17: a 1e-320 probability: no OverflowError, perplexity inf, JSON null plus a flag."""
    np.save(tmp_path / "p.npy", np.array([[1e-320, 1.0]]))
    np.save(tmp_path / "y.npy", np.array([0]))
    metrics = strict_json(run("eval", "--proba", str(tmp_path / "p.npy"), "--labels", str(tmp_path / "y.npy"),
                              "--json").stdout)
    assert metrics["perplexity"] is None and metrics["non_finite"] == {"perplexity": "inf"}
    assert_close(metrics["log_loss"], -np.log(1e-320))
    text = run("eval", "--proba", str(tmp_path / "p.npy"), "--labels", str(tmp_path / "y.npy")).stdout
    assert "perplexity                inf (exp of the log loss overflows float64" in text
    np.save(tmp_path / "p0.npy", np.array([[0.0, 1.0]]))
    metrics = strict_json(run("eval", "--proba", str(tmp_path / "p0.npy"), "--labels", str(tmp_path / "y.npy"),
                              "--json").stdout)
    assert metrics["log_loss"] is None and metrics["non_finite"]["log_loss"] == "inf"


def test_huge_features_train_cleanly(tmp_path):
    """issue 12 #16: features near 1e300 train without overflow warnings or a false "contains NaN", exactly as the
    same features near 1 do (standardizing removes the scale)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 2))
    frame = pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "y": (x[:, 0] > 0).astype(int)})
    results = []
    for scale in (1.0, 1e300):
        frame.assign(a=frame["a"] * scale).to_csv(tmp_path / "huge.csv", index=False)
        out = tmp_path / f"run{scale:g}"
        proc = run("train", "--data", str(tmp_path / "huge.csv"), "--target", "y", "--model", "softmax", "--epochs",
                   "50", "--out", str(out), "--quiet")
        only_convergence_notes(proc.stderr)  # issue 12 #16: no overflow warnings for features near 1e300
        results.append(strict_json((out / "metrics.json").read_text()))
    assert results[1]["accuracy"] == results[0]["accuracy"] > 0.8
    assert_close(results[1]["log_loss"], results[0]["log_loss"], np.float32)
    frame.loc[3, "a"] = np.inf
    frame.to_csv(tmp_path / "inf.csv", index=False)
    fails("train", "--data", str(tmp_path / "inf.csv"), "--target", "y", message="column 'a' has an infinite value")


def test_eval_out_refuses_dangling_symlink(tmp_path):
    """issue 12 #20: a dangling symlink in --out is not written through."""
    np.save(tmp_path / "p.npy", np.array([[0.9, 0.1], [0.2, 0.8]]))
    np.save(tmp_path / "y.npy", np.array([0, 1]))
    plots = tmp_path / "plots"
    plots.mkdir()
    target = tmp_path / "elsewhere.png"
    os.symlink(target, plots / "reliability.png")
    fails("eval", "--proba", str(tmp_path / "p.npy"), "--labels", str(tmp_path / "y.npy"), "--out", str(plots),
          message="already holds reliability.png")
    assert not target.exists()
    run("eval", "--proba", str(tmp_path / "p.npy"), "--labels", str(tmp_path / "y.npy"), "--out", str(plots),
        "--force")
    assert not target.exists() and not (plots / "reliability.png").is_symlink()
    assert (plots / "reliability.png").read_bytes()[:4] == b"\x89PNG"


def test_info_json_is_standard():
    """issue 12 #17: an infinite KL divergence is null plus a flag, not the non-standard Infinity."""
    data = strict_json(run("info", "--p", "1,0", "--q", "0,1", "--json").stdout)
    assert data["kl_divergence"] is None and data["cross_entropy"] is None
    assert data["non_finite"] == {"cross_entropy": "inf", "kl_divergence": "inf"}
    assert_close(data["entropy"], 0.0)


def test_calibrate_the_predictions_of_a_real_table(wine, tmp_path):
    """Issue 15: train on the table with text columns and missing values, predict, then calibrate the headed
    probability CSV (columns named by class, in predict's order) against the labels; T equals a brute-force minimiser
    of the same objective (logits = log p)."""
    from reference import brute_force_temperature

    run_dir = tmp_path / "run"
    run("train", "--data", str(wine["dir"] / "wine.csv"), "--target", "cultivar", "--epochs", "40", "--out",
        str(run_dir), "--quiet")
    table = wine["table"]
    table.drop(columns="cultivar").to_csv(tmp_path / "features.csv", index=False)
    table[["cultivar"]].to_csv(tmp_path / "labels.csv", index=False)
    run("predict", "--model", str(run_dir), "--data", str(tmp_path / "features.csv"), "--out",
        str(tmp_path / "pred.csv"))
    pred = pd.read_csv(tmp_path / "pred.csv")
    proba = pred.drop(columns="predicted")
    proba.to_csv(tmp_path / "proba.csv", index=False)
    result = strict_json(run("calibrate", "--proba", str(tmp_path / "proba.csv"), "--labels",
                             str(tmp_path / "labels.csv"), "--json").stdout)
    classes = list(proba.columns)
    target = np.array([classes.index(c) for c in table["cultivar"]])
    with np.errstate(divide="ignore"):
        logits = np.log(proba.to_numpy())
    assert_close(result["temperature"], brute_force_temperature(logits, target), "minimizer")


def test_library_messages_show_the_commands_flags(tmp_path):
    """The library names its parameters (`target`, `text_columns`, `labels_column`, `logprobs=True`); the command
    shows each as its own flag (cli.as_flags), in errors and in the column note."""
    pd.DataFrame({"a": [1, 2, 3, 4], "b": ["x y", "y z", "z x", "x x"], "y": [0, 1, 0, 1]}).to_csv(
        tmp_path / "t.csv", index=False)
    table = tmp_path / "t.csv"
    fails("train", "--data", table, message="--target is required with a file")
    fails("train", "--data", table, "--target", "y", "--task", "text", "--text", "nope", message="--text names 'nope'")
    fails("train", "--data", table, "--target", "y", "--drop", "a", "--drop", "b",
          message="b (--drop); override with --text, --categorical or --drop); keep at least one with --text "
                  "or --categorical")
    fails("eval", "--proba", table, "--labels", table, message="say which holds the labels with --labels-column")
    np.save(tmp_path / "lp.npy", -np.ones(4))
    assert "`" not in fails("perplexity", tmp_path / "lp.npy", message="pass --logprobs, which reads them")


def test_a_new_users_mistakes_get_one_line_naming_the_flag(tmp_path):
    """What a first trial of the README ran into, each now one line with exit status 2 that names the flag."""
    frame = pd.DataFrame({"x": [1.0, 2.0, None, 4.0, 5.0, 6.0], "note": ["a"] * 6, "y": [0, 1, 0, 1, 0, 7]})
    table = tmp_path / "t.csv"
    frame.to_csv(table, index=False)
    five = tmp_path / "five.csv"
    frame.iloc[:5].to_csv(five, index=False)
    before = five.read_bytes()
    fails("train", "--data", five, "--target", "y", "--out", five, "--force",
          message=f"--out {five} is --data {five}, which this command reads")
    assert five.read_bytes() == before
    (tmp_path / "file.txt").write_text("x")
    fails("train", "--data", "iris", "--out", tmp_path / "file.txt",
          message=f"--out {tmp_path / 'file.txt'} is a file, not a directory; --out names the directory to write")
    fails("train", "--data", "iris", "--target", "y", message="the bundled data set 'iris' has its own labels")
    fails("train", "--data", table, "--target", "y", message="class 7 of t has a single row")  # not np.int64(7)
    fails("train", "--data", five, "--target", "y", "--drop", "y",
          message="--drop names 'y', which is not a feature")
    fails("predict", "--model", table, "--data", table, message="is a file, not a model's directory")
    fails("eval", "--proba", table, "--labels-colum", "y", message="unrecognized arguments: --labels-colum y")
    np.save(tmp_path / "p.npy", np.full((6, 2), 0.5))
    # a labels file of several columns, one with a gap: asked for the column, not told of the gap
    fails("eval", "--proba", tmp_path / "p.npy", "--labels", table, message="say which holds the labels with "
                                                                            "--labels-column")
    np.save(tmp_path / "p5.npy", np.full((5, 2), 0.5))
    fails("eval", "--proba", tmp_path / "p5.npy", "--labels", five, "--labels-column", "y", "--out", five,
          message=f"--out {five} is a file, not a directory")
    assert five.read_bytes() == before
