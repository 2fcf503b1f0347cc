"""The crossentropy command run in this process: ``crossentropy.cli.main(argv)`` with its own working directory,
captured stdout and stderr, a fresh set of warning filters (as a new interpreter has) and a traceback with exit
status 1 for an exception that escapes ``main`` (as ``python -m crossentropy`` shows it). A handful of tests still
start a real process (tests/test_cli_e2e.py and the tests that must import the library afresh)."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import traceback
import warnings

from crossentropy.cli import main


def run(*args, cwd=None, check_ok=True) -> subprocess.CompletedProcess:
    """``crossentropy *args`` (in ``cwd``) as a CompletedProcess; with ``check_ok``, exit status 0 is asserted."""
    argv = [str(a) for a in args]
    out, err = io.StringIO(), io.StringIO()
    before, columns = os.getcwd(), os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "120"  # argparse's --help width, as the subprocess runs had it
    try:
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings():
            warnings.resetwarnings()
            warnings.simplefilter("default")
            try:
                code = main(argv)
            except SystemExit as exc:  # --help and --version exit from argparse
                code = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
            except Exception:  # noqa: BLE001 - a bug: the traceback, as the interpreter prints it
                err.write(traceback.format_exc())
                code = 1
    finally:
        os.chdir(before)
        if columns is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = columns
    proc = subprocess.CompletedProcess(["crossentropy", *argv], code, out.getvalue(), err.getvalue())
    if check_ok:
        assert proc.returncode == 0, proc.stderr
    return proc


def fails(*args, cwd=None, message):
    """Run ``crossentropy *args``, which must fail with exit status 2 and one line on stderr holding ``message``."""
    proc = run(*args, cwd=cwd, check_ok=False)
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert message in lines[0], lines[0]
    return lines[0]
