"""The README's language-model sections run as written (a tiny random model on CPU)."""

from pathlib import Path

import pytest

SECTIONS = ["### Policy gradients: log-probabilities and entropy from hidden states", "### Per-token weights",
            "### Gradient accumulation, DDP and FSDP2: the global mean"]


def _blocks(section):
    text = Path(__file__).resolve().parents[2].joinpath("README.md").read_text()
    body = text.split(section, 1)[1].split("\n#", 1)[0]
    return [block.split("```", 1)[0] for block in body.split("```python\n")[1:]]


@pytest.mark.parametrize("section", SECTIONS)
def test_readme_section_runs(section):
    blocks = _blocks(section)
    assert len(blocks) == 1  # each section is one self-contained block, with its own asserts
    exec(compile(blocks[0], "README.md", "exec"), {})
