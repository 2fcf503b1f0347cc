"""Fuzz area 4, the command line: ``crossentropy eval / train / info`` run in process (tests/clirun.py), on
generated malformed CSV, NPY, Parquet and JSON files and malformed option values (a bounded number of runs).

Invariants: exit status 0 (stderr empty but for one-line notes that training hit --epochs, issue 15's
ConvergenceWarning), or 2 with exactly one line on stderr and no traceback; no input file is changed or
deleted (hashed before and after), including when ``--out`` names an input file.

Every failure fails the test (issue 12 #13-#20 are fixed); ``KNOWN`` would list a generator's accepted, reported
failures, and is empty.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
from clirun import run
from fuzzkit import area, count, rng_for

ROOT = Path(__file__).resolve().parents[2]
N = 12

# generator -> the issue item of its accepted failures; none since issue 12 #13-#20
KNOWN: dict = {}



def _convergence_note(line: str) -> bool:
    """The one line a successful train may print: scikit-learn's ConvergenceWarning, that --epochs ended it."""
    return line.startswith("crossentropy: warning:") and line.endswith("(ConvergenceWarning)")

def _proba(rng, n=N, k=3) -> np.ndarray:
    p = rng.random((n, k)) + 0.05
    return p / p.sum(1, keepdims=True)


def _labels(rng, n=N, k=3) -> np.ndarray:
    y = rng.integers(0, k, n)
    y[:k] = np.arange(k)
    return y


def _write_csv(path: Path, rows, header=None) -> None:
    lines = [] if header is None else [",".join(header)]
    lines += [",".join(str(v) for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n")


def _malformed(rng, d: Path, what: str) -> tuple[str, Path]:
    """One malformed (or edge-case) input file for ``what`` ("proba" or "labels"); returns (generator, path)."""
    kinds = ["csv empty", "csv header only", "csv short row", "csv text cell", "csv nan", "csv inf",
             "csv tiny probability", "csv huge", "csv negative", "csv garbage bytes", "csv semicolons",
             "npy empty", "npy truncated", "npy bool", "npy text", "npy object", "npy 3-d", "npy nan",
             "parquet zero rows", "parquet text", "parquet nulls", "json",
             # issue 21: a directory, Latin-1 bytes, a BOM, tabs, predict's "predicted" column
             "csv directory", "csv latin-1", "csv bom", "tsv tabs", "csv predicted column"]
    if what == "labels":
        kinds += ["csv float labels", "csv integer labels subset"]
    kind = kinds[int(rng.integers(len(kinds)))]
    p, y = _proba(rng), _labels(rng)
    good = p if what == "proba" else y[:, None]
    path = d / f"{what}-{kind.replace(' ', '_')}.{kind.split()[0]}"
    if kind == "csv empty":
        path.write_text("")
    elif kind == "csv header only":
        path.write_text("a,b,c\n")
    elif kind == "csv short row":
        rows = good.tolist()
        rows[3] = rows[3][:-1] if len(rows[3]) > 1 else []
        _write_csv(path, rows)
    elif kind == "csv text cell":
        rows = good.astype(object)
        rows[2, 0] = "abc"
        _write_csv(path, rows.tolist())
    elif kind in ("csv nan", "csv inf", "csv tiny probability", "csv huge", "csv negative"):
        rows = good.astype(float)
        rows[1, 0] = {"csv nan": np.nan, "csv inf": np.inf, "csv tiny probability": 1e-320, "csv huge": 1e300,
                      "csv negative": -0.5}[kind]
        _write_csv(path, rows.tolist())
    elif kind == "csv directory":
        path.mkdir()
    elif kind in ("csv latin-1", "csv bom", "csv predicted column", "tsv tabs"):
        rows = [[f"{v:.6g}" for v in row] for row in good.tolist()]
        names = [f"c{j}" for j in range(good.shape[1])]
        if kind == "csv predicted column":
            names, rows = ["predicted", *names], [["x", *row] for row in rows]
        text = "\n".join((("\t" if kind == "tsv tabs" else ",").join(r)) for r in [names, *rows]) + "\n"
        data = text.replace("c0", "é0").encode("latin-1") if kind == "csv latin-1" else text.encode()
        path.write_bytes((b"\xef\xbb\xbf" if kind == "csv bom" else b"") + data)
    elif kind == "csv garbage bytes":
        path.write_bytes(bytes(rng.integers(0, 256, 300, dtype=np.uint8)))
    elif kind == "csv semicolons":
        path.write_text("\n".join(";".join(str(v) for v in row) for row in good.tolist()) + "\n")
    elif kind == "csv float labels":
        _write_csv(path, (y[:, None] + 0.5).tolist())
    elif kind == "csv integer labels subset":
        _write_csv(path, [[v] for v in np.where(y == 1, 0, y)])
    elif kind == "npy empty":
        path.write_bytes(b"")
    elif kind == "npy truncated":
        np.save(path, good)
        data = path.read_bytes()
        path.write_bytes(data[: int(rng.integers(1, len(data)))])
    elif kind == "npy bool":
        np.save(path, good > 0.3)
    elif kind == "npy text":
        np.save(path, good.astype(str))
    elif kind == "npy object":
        np.save(path, np.array([{"a": 1}] * N, dtype=object), allow_pickle=True)
    elif kind == "npy 3-d":
        np.save(path, np.stack([good, good], axis=-1))
    elif kind == "npy nan":
        bad = good.astype(float)
        bad[0, 0] = np.nan
        np.save(path, bad)
    elif kind.startswith("parquet"):
        frame = pd.DataFrame(good, columns=[f"c{i}" for i in range(good.shape[1])])
        if kind == "parquet zero rows":
            frame = frame.iloc[:0]
        elif kind == "parquet text":
            frame["c0"] = frame["c0"].astype(str)
        else:
            frame = frame.astype(object)
            frame.iloc[2, 0] = None
        frame.to_parquet(path)
    else:
        path.write_text(json.dumps({"proba": p.tolist()}))
    return kind, path


def _case(rng, i: int, d: Path) -> tuple[str, list[str]]:
    """One command line: (generator, argv)."""
    d.mkdir(parents=True)
    good_p, good_y = d / "proba.csv", d / "labels.csv"
    _write_csv(good_p, _proba(rng).tolist())
    _write_csv(good_y, [[v] for v in _labels(rng)])
    command = ("eval", "info", "eval-out", "train", "eval", "eval", "calibrate-force")[i % 7]
    if command == "info":
        values = ["0.5,0.5", "1,0", "0.5,x", "", "nan,1", "-1,2", "1e-320,1", "0.3,0.3,0.4", "inf,0", "1,,0"]
        p, q = (values[int(rng.integers(len(values)))] for _ in range(2))
        extra = [["--json"], ["--normalize"], ["--base", "2"], ["--base", "1"], []][int(rng.integers(5))]
        return "info option", ["info", "--p", p, "--q", q, *extra]
    if command == "train":
        kind, path = _malformed(rng, d, "proba")
        if kind in ("csv header only", "csv empty") or rng.random() < 0.3:
            data = d / "train.csv"
            X = rng.standard_normal((30, 3)) * (1e300 if rng.random() < 0.5 else 1)
            kind = "train huge features" if np.abs(X).max() > 1e100 else "train"
            _write_csv(data, [[*row, int(rng.integers(0, 2))] for row in X.tolist()], header=["a", "b", "c", "y"])
            path = data
        return kind, ["train", "--data", str(path), "--target", "y", "--model", "softmax", "--epochs", "2",
                      "--quiet", "--out", str(d / "run")]
    if command == "calibrate-force":  # issue 21 #1: --force never replaces an input, whichever --out names
        target = [good_p, good_y][int(rng.integers(2))]
        return "calibrate --out onto an input with --force", [
            "calibrate", "--proba", str(good_p), "--labels", str(good_y), "--apply", str(good_p), "--out",
            str(target), "--force"]
    if command == "eval-out":  # --out names an input file: it must not be overwritten
        return "eval --out onto an input", ["eval", "--proba", str(good_p), "--labels", str(good_y), "--out",
                                            str(good_p)]
    what = "proba" if rng.random() < 0.6 else "labels"
    kind, path = _malformed(rng, d, what)
    scores = "--logits" if rng.random() < 0.3 else "--proba"  # the same FILE form in eval and calibrate
    argv = ["eval", scores, str(path if what == "proba" else good_p),
            "--labels", str(path if what == "labels" else good_y)]
    argv += [["--json"], []][int(rng.integers(2))]
    return kind, argv


def _hashes(d: Path) -> dict:
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in d.rglob("*") if p.is_file()}


def _run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return run(*argv, cwd=cwd, check_ok=False)  # in process (tests/clirun.py)


def test_fuzz_cli_malformed_inputs(tmp_path):
    a = area("command line")
    since = len(a.failures)
    cases = []
    for i in range(count(0.0001, least=3, most=12)):
        d = tmp_path / f"case{i}"
        kind, argv = _case(rng_for("cli", i), i, d)
        cases.append((kind, argv, d, _hashes(d)))
    results = [_run(c[1], c[2]) for c in cases]  # one at a time: a run changes the working directory
    known: dict = {}
    for (kind, argv, d, before), proc in zip(cases, results, strict=True):
        a.cases += 1
        label = "python -m crossentropy " + " ".join(a if a else "''" for a in argv).replace(str(d) + "/", "")
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        problems = []
        if proc.returncode not in (0, 2):
            problems.append(f"exit {proc.returncode}")
        if "Traceback" in proc.stderr:
            problems.append("traceback: " + (lines[-1] if lines else ""))
        elif proc.returncode == 2 and len(lines) != 1:
            problems.append(f"{len(lines)} lines on stderr: {' | '.join(lines)[:300]}")
        elif proc.returncode == 0 and not all(_convergence_note(line) for line in lines):
            problems.append(f"success with {len(lines)} lines on stderr: {' | '.join(lines)[:200]}")
        after = {p: h for p, h in _hashes(d).items() if p in before}
        if len(after) != len(before) or any(after[p] != h for p, h in before.items()):
            a.fail(label, "an input file was changed or deleted")
        if not problems:
            continue
        item = KNOWN.get("success warnings" if proc.returncode == 0 and "traceback" not in problems[0] else kind)
        if item is None:
            a.fail(label, "; ".join(problems))
        else:
            known.setdefault((item, kind), [0, f"{label}: {'; '.join(problems)}"])[0] += 1
    a.known.extend(f"issue 12 {item} ({kind}): x{n}, e.g. {text}" for (item, kind), (n, text) in sorted(known.items()))
    a.check(since)
