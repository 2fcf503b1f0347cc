"""Print pip constraints that pin every dependency declared in pyproject.toml to its floor (``name>=X`` becomes
``name==X``), for `make test-min`. torch stays at the version of constraints.txt (the CPU build available here);
the dev tools that the tests do not run (ruff, mypy) are left out."""

import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SKIP = {"ruff", "mypy", "torch"}

project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
requirements = list(project["dependencies"])
for extra in project["optional-dependencies"].values():
    requirements += [r for r in extra if not r.startswith("crossentropy")]
pins = {}
for requirement in requirements:
    match = re.fullmatch(r"([A-Za-z0-9_.-]+)\s*>=\s*([0-9][0-9A-Za-z.]*)", requirement.strip())
    if match is None:
        sys.exit(f"min_constraints: cannot read a floor from {requirement!r}; declare it as name>=version")
    name, floor = match.groups()
    if name.lower() not in SKIP:
        pins[name.lower()] = floor
lines = [f"{name}=={floor}" for name, floor in sorted(pins.items())]
lines += [line for line in (ROOT / "constraints.txt").read_text().splitlines() if line.startswith("torch==")]
print("\n".join(lines))
