"""Issue 21, the command-line items, driven in-process through ``crossentropy.cli.main``: ``--force`` never replaces
a file the command reads (#1), ``calibrate --apply`` matches columns by name (#2), tiny and continuous training
tables (#11, #12), a directory as an input file (#13, #31), perplexity of zero tokens (#15), predict output into eval
and calibrate (#16), ``--labels-column`` (#17), ``--logits FILE`` in both commands (#18), the help text (#19),
``--encoding``, ``.tsv`` and unseen categories (#22), and ``--log-dir`` (#32)."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from conftest import assert_close

import crossentropy as ce
from crossentropy import cli


def main(capsys, *argv):
    """(exit status, stdout, stderr) of ``crossentropy ARGV``."""
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def refused(capsys, *argv, message: str) -> str:
    """``crossentropy ARGV`` must exit 2 with one line on stderr that holds ``message``."""
    code, out, err = main(capsys, *argv)
    lines = err.strip().splitlines()
    assert code == 2, (code, out, err)
    assert len(lines) == 1 and "Traceback" not in err, err
    assert message in lines[0], lines[0]
    return lines[0]


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _table(path, n=40, seed=0, classes=("a", "b", "c")):
    """A learnable CSV: two numeric features and a text label."""
    rng = np.random.default_rng(seed)
    y = np.array(classes)[np.arange(n) % len(classes)]
    x = rng.standard_normal((n, 2)) + (np.arange(n) % len(classes))[:, None] * 3
    rows = [f"{a:.6f},{b:.6f},{label}" for (a, b), label in zip(x, y, strict=True)]
    path.write_text("x1,x2,label\n" + "\n".join(rows) + "\n")
    return path


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A trained softmax run on a three-class table, and the table."""
    folder = tmp_path_factory.mktemp("issue21")
    data = _table(folder / "t.csv")
    assert cli.main(["train", "--data", str(data), "--target", "label", "--model", "softmax", "--epochs", "5",
                     "--quiet", "--out", str(folder / "run")]) == 0
    return folder / "run", data


# ------------------------------------------------------------------------------------------------ 1: --force
def test_predict_force_never_overwrites_its_data(capsys, run_dir, tmp_path):
    run, data = run_dir
    copy = tmp_path / "t.csv"
    copy.write_bytes(data.read_bytes())
    before = _digest(copy)
    refused(capsys, "predict", "--model", run, "--data", copy, "--out", copy, "--force", message="--data")
    assert _digest(copy) == before
    refused(capsys, "predict", "--model", run, "--data", copy, "--out", tmp_path / "." / "t.csv", "--force",
            message="reads")
    assert _digest(copy) == before


def test_predict_force_never_writes_into_the_run_directory(capsys, run_dir):
    run, data = run_dir
    before = _digest(run / "model.json")
    refused(capsys, "predict", "--model", run, "--data", data, "--out", run / "model.json", "--force",
            message="--model")
    refused(capsys, "predict", "--model", run, "--data", data, "--out", run / "new.csv", "--force",
            message="--model")
    assert _digest(run / "model.json") == before and not (run / "new.csv").exists()


def test_calibrate_force_never_overwrites_its_input(capsys, tmp_path):
    p = tmp_path / "p.csv"
    np.savetxt(p, [[0.7, 0.3], [0.2, 0.8], [0.6, 0.4], [0.1, 0.9]], delimiter=",", header="a,b", comments="")
    (tmp_path / "y.csv").write_text("a\nb\nb\nb\n")
    before = _digest(p)
    for out in (p, tmp_path / "y.csv"):
        refused(capsys, "calibrate", "--proba", p, "--labels", tmp_path / "y.csv", "--apply", p, "--out", out,
                "--force", message="reads")
    assert _digest(p) == before


def test_eval_and_train_force_never_overwrite_an_input(capsys, tmp_path):
    folder = tmp_path / "plots"
    folder.mkdir()
    p, y = folder / "reliability.png", folder / "y.csv"
    np.savetxt(p, [0.2, 0.9, 0.4, 0.7], delimiter=",")
    y.write_text("0\n1\n0\n1\n")
    before = _digest(p)
    refused(capsys, "eval", "--proba", p, "--labels", y, "--out", folder, "--force", message="reads")
    assert _digest(p) == before
    (tmp_path / "run").mkdir()
    data = _table(tmp_path / "run" / "metrics.csv", n=12)
    before = _digest(data)
    refused(capsys, "train", "--data", data, "--target", "label", "--model", "softmax", "--quiet", "--out",
            tmp_path / "run", "--force", message="reads")
    assert _digest(data) == before


# ------------------------------------------------------------------------------------------------ 2: --apply by name
def test_calibrate_apply_matches_columns_by_name(capsys, tmp_path):
    rng = np.random.default_rng(0)
    z = rng.standard_normal((60, 3)) * 2
    proba = ce.softmax(z)
    y = np.array(["Adelie", "Chinstrap", "Gentoo"])[[rng.choice(3, p=row) for row in proba]]  # not separable
    np.savetxt(tmp_path / "p.csv", proba, delimiter=",", header="Adelie,Chinstrap,Gentoo", comments="")
    (tmp_path / "y.csv").write_text("\n".join(y) + "\n")
    np.savetxt(tmp_path / "shuffled.csv", proba[:, [2, 0, 1]], delimiter=",", header="Gentoo,Adelie,Chinstrap",
               comments="")
    common = ["calibrate", "--proba", tmp_path / "p.csv", "--labels", tmp_path / "y.csv", "--json"]
    assert main(capsys, *common, "--apply", tmp_path / "p.csv", "--out", tmp_path / "a.csv")[0] == 0
    assert main(capsys, *common, "--apply", tmp_path / "shuffled.csv", "--out", tmp_path / "b.csv")[0] == 0
    a, b = (np.loadtxt(tmp_path / name, delimiter=",", skiprows=1) for name in ("a.csv", "b.csv"))
    assert (tmp_path / "b.csv").read_text().splitlines()[0] == "Adelie,Chinstrap,Gentoo"
    assert_close(b, a, "float64")
    np.savetxt(tmp_path / "wrong.csv", proba, delimiter=",", header="adelie,Chinstrap,Gentoo", comments="")
    refused(capsys, *common, "--apply", tmp_path / "wrong.csv", "--out", tmp_path / "c.csv", message="--apply")
    assert not (tmp_path / "c.csv").exists()
