"""The README's "Text classification" section runs as written: its Python blocks, and its shell lines through the
CLI's ``main`` (in a temporary directory)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from crossentropy.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"


def _section_blocks() -> list[tuple[str, str]]:
    text = README.read_text()
    start = text.index("## Text classification")
    section = text[start:text.index("\n## ", start + 1)]
    return re.findall(r"```(python|bash)\n(.*?)```", section, flags=re.S)


def test_readme_text_section_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    blocks = _section_blocks()
    assert [kind for kind, _ in blocks] == ["python", "bash", "python"]
    namespace: dict = {}
    for kind, code in blocks:
        if kind == "python":
            exec(compile(code, str(README), "exec"), namespace)
            continue
        for line in code.splitlines():
            argv = shlex.split(line, comments=True)
            assert argv[0] == "crossentropy"
            assert main(argv[1:]) == 0, line
    # the README's comment on this line, as printed
    texts = ["质量很好，非常满意！", "很失望，质量很差，后悔买了"]
    assert namespace["model"].predict(texts).tolist() == ["positive", "negative"]
    assert (tmp_path / "reviews_pred.csv").exists() and namespace["metrics"]["top_ngrams"]["negative"]
