"""The README's examples run as written (issue 21 #23).

Every ```python block of README.md runs on its own, in a fresh temporary directory, in a fresh interpreter (so it
cannot lean on names that an earlier block defined, or on files the tests make). Of the shell examples, the cheap
commands run in order in one fresh directory: the ``python -c`` lines that make the example files (in bash), then the
``crossentropy`` commands in ``CHEAP`` (``$ `` prompts are dropped), through the command's ``main`` in this process,
as tests/test_cli_e2e.py runs the installed command end to end; any other line (``make``, ``pip``, a long training)
is left out.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

import crossentropy
from crossentropy.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
CHEAP = ("python -c ", "crossentropy info ", "crossentropy eval --proba ", "crossentropy calibrate ",
         "crossentropy predict --model runs/wine ", "crossentropy train --data my.csv ",
         "crossentropy train --data wine.csv ")  # the text section's lines run in tests/test_readme_text.py
TIMEOUT_S = 300


def _blocks(language: str) -> list[str]:
    return [body for lang, body in FENCE.findall(README.read_text(encoding="utf-8")) if lang == language]


def _env() -> dict:
    """The environment of the examples: this checkout's package first on the path."""
    src = str(Path(crossentropy.__file__).resolve().parents[1])
    return {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]),
            "MPLBACKEND": "Agg"}


def _shell_lines() -> list[str]:
    lines = []
    for lang, body in FENCE.findall(README.read_text(encoding="utf-8")):
        if lang not in ("bash", ""):
            continue
        for line in body.splitlines():
            line = line.removeprefix("$ ").strip()
            if line.startswith(CHEAP) and (lang == "bash" or body.lstrip().startswith("$ ")):
                lines.append(line)
    return lines


PYTHON_BLOCKS = _blocks("python")


def test_the_readme_has_examples():
    assert len(PYTHON_BLOCKS) >= 8 and len(_shell_lines()) >= 8


@pytest.mark.parametrize("index", range(len(PYTHON_BLOCKS)))
def test_python_block_runs_as_written(tmp_path, index):
    code = PYTHON_BLOCKS[index]
    run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=_env(), capture_output=True, text=True,
                         timeout=TIMEOUT_S)
    assert run.returncode == 0, f"README python block {index} failed:\n{code}\n--- stderr ---\n{run.stderr[-3000:]}"


def _wine_excerpt() -> list[list[str]]:
    """The README's excerpt of ``crossentropy predict --model runs/wine --data new.csv``: its rows, split."""
    body = next(b for lang, b in FENCE.findall(README.read_text(encoding="utf-8")) if b.startswith("predicted,"))
    return [line.split(",") for line in body.splitlines() if line != "..."]


def _rounded(rows: list[list[str]]) -> list[list[str]]:
    return [[cell if i == 0 or r == 0 else f"{float(cell):.3f}" for i, cell in enumerate(row)]
            for r, row in enumerate(rows)]


def test_cheap_shell_examples_run_in_order(tmp_path, monkeypatch, capsys):
    """The lines run in one directory, so the commands find the files the one-liners before them made; the wine
    predictions print as the README shows them (to 3 decimals: BLAS builds differ in the last digits)."""
    monkeypatch.chdir(tmp_path)
    prelude = f'python() {{ "{sys.executable}" "$@"; }}\n'
    compared = False
    for line in _shell_lines():
        if line.startswith("python -c "):
            run = subprocess.run(["bash", "-c", prelude + line], env=_env(), capture_output=True, text=True,
                                 timeout=TIMEOUT_S)
            assert run.returncode == 0, f"README shell line failed:\n{line}\n--- stderr ---\n{run.stderr[-3000:]}"
            continue
        argv = shlex.split(line, comments=True)
        assert argv[0] == "crossentropy" and not set("|><&;") & set("".join(argv)), line  # a plain command
        capsys.readouterr()
        assert main(argv[1:]) == 0, f"README shell line failed:\n{line}"
        if argv[1:] == ["predict", "--model", "runs/wine", "--data", "new.csv"]:
            excerpt = _wine_excerpt()
            printed = [row.split(",") for row in capsys.readouterr().out.splitlines()[:len(excerpt)]]
            assert _rounded(printed) == _rounded(excerpt)
            compared = True
    assert compared, "the README no longer runs the wine predict line whose output it shows"
