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


# ------------------------------------------------------------------------------------------------ 13, 31: directories
@pytest.mark.parametrize("flag", ["--proba", "--labels"])
def test_a_directory_as_an_input_file_is_one_line(capsys, tmp_path, flag):
    (tmp_path / "somedir.csv").mkdir()
    np.savetxt(tmp_path / "p.csv", [0.2, 0.9], delimiter=",")
    (tmp_path / "y.csv").write_text("0\n1\n")
    files = {"--proba": tmp_path / "p.csv", "--labels": tmp_path / "y.csv", flag: tmp_path / "somedir.csv"}
    refused(capsys, "eval", *[v for item in files.items() for v in item], message="is a directory")
    refused(capsys, "calibrate", *[v for item in files.items() for v in item], message="is a directory")


def test_directories_for_conll_train_and_predict_are_one_line(capsys, run_dir, tmp_path):
    run, _ = run_dir
    refused(capsys, "eval", "--conll", tmp_path, message="is a directory")
    (tmp_path / "d.csv").mkdir()
    refused(capsys, "train", "--data", tmp_path / "d.csv", "--target", "y", message="is a directory")
    refused(capsys, "predict", "--model", run, "--data", tmp_path / "d.csv", message="is a directory")


# ------------------------------------------------------------------------------------------------ 16, 17, 18
def test_predict_output_feeds_eval_and_calibrate(capsys, run_dir, tmp_path):
    run, data = run_dir
    assert main(capsys, "predict", "--model", run, "--data", data, "--out", tmp_path / "pred.csv")[0] == 0
    assert (tmp_path / "pred.csv").read_text().startswith("predicted,a,b,c")
    code, out, err = main(capsys, "eval", "--proba", tmp_path / "pred.csv", "--labels", data, "--labels-column",
                          "label", "--json")
    assert code == 0, err
    import json

    proba = np.loadtxt(tmp_path / "pred.csv", delimiter=",", skiprows=1, usecols=(1, 2, 3))
    y = np.loadtxt(data, delimiter=",", skiprows=1, usecols=2, dtype=str)
    expected = -np.mean(np.log(proba[np.arange(len(y)), np.searchsorted(["a", "b", "c"], y)]))
    assert_close(json.loads(out)["log_loss"], expected, "float64")
    code, out, err = main(capsys, "calibrate", "--proba", tmp_path / "pred.csv", "--labels", data,
                          "--labels-column", "label", "--apply", tmp_path / "pred.csv", "--out", tmp_path / "cal.csv")
    assert code == 0, err
    assert (tmp_path / "cal.csv").read_text().splitlines()[0] == "a,b,c"


def test_labels_column_reads_only_that_column(capsys, tmp_path):
    np.savetxt(tmp_path / "p.csv", [[0.8, 0.2], [0.3, 0.7], [0.6, 0.4]], delimiter=",", header="x,y", comments="")
    (tmp_path / "y.csv").write_text("id,species,note\n1,x,fine\n2,y,\n3,x,ok\n")  # a gap in another column
    code, out, err = main(capsys, "eval", "--proba", tmp_path / "p.csv", "--labels", tmp_path / "y.csv",
                          "--labels-column", "species")
    assert code == 0, err
    code, out, err = main(capsys, "calibrate", "--proba", tmp_path / "p.csv", "--labels", tmp_path / "y.csv",
                          "--labels-column", "species")
    assert code == 0, err
    refused(capsys, "calibrate", "--proba", tmp_path / "p.csv", "--labels", tmp_path / "y.csv",
            "--labels-column", "genus", message="no column 'genus'")


def test_eval_and_calibrate_take_logits_file_alike(capsys, tmp_path):
    z = np.array([[2.0, -1.0], [-0.5, 1.5], [0.3, 0.1], [-1.0, 0.2]])
    np.save(tmp_path / "z.npy", z)
    np.savetxt(tmp_path / "y.csv", [0, 1, 1, 1], fmt="%d")
    import json

    code, out, err = main(capsys, "eval", "--logits", tmp_path / "z.npy", "--labels", tmp_path / "y.csv", "--json")
    assert code == 0, err
    y = np.array([0, 1, 1, 1])
    expected = ce.softmax_cross_entropy(z, y)
    assert_close(json.loads(out)["log_loss"], float(expected), "float64")
    assert main(capsys, "calibrate", "--logits", tmp_path / "z.npy", "--labels", tmp_path / "y.csv")[0] == 0
    refused(capsys, "eval", "--logits", tmp_path / "z.npy", "--proba", tmp_path / "z.npy", "--labels",
            tmp_path / "y.csv", message="not allowed with argument")


# ------------------------------------------------------------------------------------------------ 22: encoding, tsv
def test_latin1_files_need_encoding(capsys, run_dir, tmp_path):
    run, data = run_dir
    text = data.read_text().replace("x1,x2", "x1,x2").replace(",a\n", ",é\n")
    (tmp_path / "l1.csv").write_bytes(text.encode("latin-1"))
    line = refused(capsys, "train", "--data", tmp_path / "l1.csv", "--target", "label", "--quiet", "--out",
                   tmp_path / "r", message="--encoding")
    assert "is not UTF-8 text" in line and not (tmp_path / "r").exists()
    code, out, err = main(capsys, "train", "--data", tmp_path / "l1.csv", "--target", "label", "--model", "softmax",
                          "--epochs", "2", "--quiet", "--out", tmp_path / "r", "--encoding", "latin-1")
    assert code == 0, err
    refused(capsys, "train", "--data", tmp_path / "l1.csv", "--target", "label", "--encoding", "nonsense",
            message="encoding 'nonsense'")
    refused(capsys, "predict", "--model", run, "--data", tmp_path / "l1.csv", message="--encoding")


def test_tsv_files_are_tables(capsys, run_dir, tmp_path):
    run, data = run_dir
    (tmp_path / "t.tsv").write_text(data.read_text().replace(",", "\t"))
    code, out, err = main(capsys, "predict", "--model", run, "--data", tmp_path / "t.tsv")
    code_csv, out_csv, _ = main(capsys, "predict", "--model", run, "--data", data)
    assert code == 0 and code_csv == 0, err
    assert out == out_csv


def test_bom_is_dropped(capsys, run_dir, tmp_path):
    run, data = run_dir
    (tmp_path / "bom.csv").write_bytes(b"\xef\xbb\xbf" + data.read_bytes())
    code, out, err = main(capsys, "predict", "--model", run, "--data", tmp_path / "bom.csv")
    assert code == 0, err


# ------------------------------------------------------------------------------------------------ 11, 12: train tables
@pytest.mark.parametrize("n", [4, 6, 10, 12])
def test_train_on_tiny_tables_splits_or_says_why(capsys, tmp_path, n):
    rng = np.random.default_rng(n)
    rows = [f"{rng.normal():.4f},{rng.normal():.4f},{i % 2}" for i in range(n)]
    (tmp_path / "tiny.csv").write_text("a,b,y\n" + "\n".join(rows) + "\n")
    code, out, err = main(capsys, "train", "--data", tmp_path / "tiny.csv", "--target", "y", "--model", "softmax",
                          "--epochs", "3", "--quiet", "--out", tmp_path / "run")
    assert code == 0, err
    assert "Traceback" not in err and (tmp_path / "run" / "model.json").exists()
    assert "test set: 2 samples" in out if n <= 6 else "test set:" in out  # one test row per class at least


def test_tiny_table_with_three_classes_is_one_line(capsys, tmp_path):
    (tmp_path / "t.csv").write_text("a,y\n1,x\n2,y\n3,z\n")
    refused(capsys, "train", "--data", tmp_path / "t.csv", "--target", "y", "--quiet", message="single row")
    (tmp_path / "t.csv").write_text("a,y\n1,x\n2,y\n3,x\n4,y\n")
    refused(capsys, "train", "--data", tmp_path / "t.csv", "--target", "y", "--test-size", "0.9", "--quiet",
            message="too few")


def test_continuous_target_says_so(capsys, tmp_path):
    rng = np.random.default_rng(0)
    rows = [f"{rng.normal():.4f},{rng.normal():.4f}" for _ in range(30)]
    (tmp_path / "c.csv").write_text("x,label\n" + "\n".join(rows) + "\n")
    line = refused(capsys, "train", "--data", tmp_path / "c.csv", "--target", "label", "--quiet", "--out",
                   tmp_path / "r", message="looks continuous")
    assert "30 distinct values" in line and not (tmp_path / "r").exists()


# ------------------------------------------------------------------------------------------------ 15: perplexity
def test_perplexity_of_no_tokens_is_an_error(capsys, tmp_path):
    (tmp_path / "empty.csv").write_text("")
    refused(capsys, "perplexity", tmp_path / "empty.csv", message="no token scores")
    (tmp_path / "lp.csv").write_text("-0.5\n-1.25\n-2\n")
    refused(capsys, "perplexity", tmp_path / "lp.csv", message="--logprobs")
    code, out, err = main(capsys, "perplexity", tmp_path / "lp.csv", "--logprobs", "--json")
    import json

    assert code == 0, err
    assert_close(json.loads(out)["perplexity"], float(np.exp(np.mean([0.5, 1.25, 2]))), "float64")


# ------------------------------------------------------------------------------------------------ 19: help and errors
def test_help_text(capsys):
    for command in ("train", "predict"):
        with pytest.raises(SystemExit):
            cli.main([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        if command == "train":
            assert "25%%" not in text and "25%" in text and ".conll" in text
            for flag in ("--loss", "--label-smoothing", "--class-weight", "--optimizer", "--seed"):
                described = text.split(f"{flag} ")[-1]
                assert described.split("--")[0].strip().split(" ", 1)[1:], flag  # words after the metavar
        else:
            assert ".conll" in text and ".txt" in text


def test_errors_name_the_command(capsys, tmp_path):
    refused(capsys, "eval", "--proba", "p.csv", "--labels", "y.csv", "--bogus", message="crossentropy eval:")
    refused(capsys, "calibrate", "--proba", tmp_path / "p.csv", "--labels", "y.csv", "--apply", "a.csv",
            message="crossentropy calibrate: error: no such file for --proba")


def test_convergence_warning_names_epochs(capsys, tmp_path):
    code, out, err = main(capsys, "train", "--data", "iris", "--model", "softmax", "--epochs", "1", "--quiet",
                          "--out", tmp_path / "run")
    assert code == 0, err
    assert "(ConvergenceWarning)" in err and "--epochs 1" in err and "raise --epochs" in err
    assert "max_epochs" not in err


def _tagger_run(tmp_path):
    from crossentropy.learn.io.conll import format_conll
    from crossentropy.learn.samples.ner import generate

    (tmp_path / "train.conll").write_text(format_conll(generate(20, seed=0)))
    assert cli.main(["train", "--task", "tagging", "--data", str(tmp_path / "train.conll"), "--epochs", "1",
                     "--quiet", "--out", str(tmp_path / "tagger")]) == 0
    return tmp_path / "tagger"


def test_tagging_refuses_classification_options_and_reads_latin1_with_encoding(capsys, tmp_path):
    conll = tmp_path / "x.conll"
    conll.write_text("Peter B-PER\nflew O\n")
    for extra, flag in ((["--model", "softmax"], "--model"), (["--target", "y"], "--target"),
                        (["--log-dir", tmp_path / "logs"], "--log-dir")):
        refused(capsys, "train", "--task", "tagging", "--data", conll, *extra, "--out", tmp_path / "r",
                message=flag)
    assert not (tmp_path / "r").exists() and not (tmp_path / "logs").exists()
    tagger = _tagger_run(tmp_path)
    capsys.readouterr()
    (tmp_path / "l1.txt").write_bytes("Zoë flew to Zürich .\n".encode("latin-1"))
    refused(capsys, "predict", "--model", tagger, "--data", tmp_path / "l1.txt", message="--encoding latin-1")
    code, out, err = main(capsys, "predict", "--model", tagger, "--data", tmp_path / "l1.txt", "--encoding",
                          "latin-1")
    assert code == 0, err
    assert [line.split()[0] for line in out.splitlines() if line] == ["Zoë", "flew", "to", "Zürich", "."]


# ------------------------------------------------------------------------------------------------ 22: small items
def test_unseen_categories_get_a_note(capsys, tmp_path):
    rows = [f"{i % 5},{'red' if i % 2 else 'blue'},{i % 2}" for i in range(40)]
    (tmp_path / "c.csv").write_text("n,colour,y\n" + "\n".join(rows) + "\n")
    assert cli.main(["train", "--data", str(tmp_path / "c.csv"), "--target", "y", "--model", "softmax", "--epochs",
                     "2", "--quiet", "--out", str(tmp_path / "run")]) == 0
    (tmp_path / "new.csv").write_text("n,colour\n1,green\n2,red\n")
    capsys.readouterr()
    code, out, err = main(capsys, "predict", "--model", tmp_path / "run", "--data", tmp_path / "new.csv")
    assert code == 0
    assert err.count("not seen in training") == 1 and "'green'" in err and "'colour'" in err


def test_train_on_a_missing_file_fails_before_heavy_imports(tmp_path):
    import subprocess
    import sys

    code = ("import sys; from crossentropy import cli; rc = cli.main(['train', '--data', 'missing.csv', '--target', "
            "'y']); print(rc, 'sklearn' in sys.modules, 'pandas' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.stdout.split() == ["2", "False", "False"], proc.stderr
    assert "no such file for --data: missing.csv" in proc.stderr


# ------------------------------------------------------------------------------------------------ 32: --log-dir
def test_log_dir_is_not_left_behind_by_a_refused_run(capsys, tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "old.txt").write_text("x")
    refused(capsys, "train", "--data", "iris", "--epochs", "1", "--quiet", "--out", tmp_path / "out",
            "--log-dir", tmp_path / "logs", message="not empty")
    assert not (tmp_path / "logs").exists()
    (tmp_path / "file").write_text("x")
    refused(capsys, "train", "--data", "iris", "--epochs", "1", "--quiet", "--out", tmp_path / "new",
            "--log-dir", tmp_path / "file", message="not a directory")
    assert not (tmp_path / "new").exists()


def test_log_dir_inside_out_is_allowed(capsys, tmp_path):
    code, out, err = main(capsys, "train", "--data", "iris", "--model", "softmax", "--epochs", "2", "--quiet",
                          "--out", tmp_path / "run", "--log-dir", tmp_path / "run" / "tb")
    assert code == 0, err
    assert any((tmp_path / "run" / "tb").iterdir()) and (tmp_path / "run" / "model.json").exists()
