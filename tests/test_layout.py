"""The package's layout (docs/design.md, "Layers"): no import cycles, no private names imported across modules, and
each layer imports only what its row of the layer table allows. Imports are read with ``ast`` from every module
under src/crossentropy, the deferred ones (inside functions) included."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "crossentropy"

# docs/design.md's layer table: a module under the prefix may not import any of the listed modules (a name matches
# itself and everything below it). "crossentropy.cli" may be imported by crossentropy.__main__ only.
FORBIDDEN = {
    "crossentropy.rules": ("torch", "sklearn", "matplotlib", "crossentropy.core", "crossentropy.torch",
                           "crossentropy.learn", "crossentropy.cli"),
    "crossentropy.core": ("torch", "sklearn", "matplotlib", "crossentropy.torch", "crossentropy.learn",
                          "crossentropy.cli"),
    "crossentropy.torch": ("crossentropy.learn", "crossentropy.cli"),
    "crossentropy.learn.io": ("crossentropy.learn.models", "crossentropy.learn.metrics", "crossentropy.learn.workflow",
                              "crossentropy.learn.tracking", "crossentropy.learn.plots", "crossentropy.cli"),
    "crossentropy.learn.metrics": ("crossentropy.learn.models", "crossentropy.learn.workflow",
                                   "crossentropy.learn.tracking", "crossentropy.cli"),
    "crossentropy.learn.models": ("crossentropy.learn.workflow", "crossentropy.learn.tracking", "crossentropy.cli"),
    "crossentropy": ("crossentropy.cli",),
}
CLI_IMPORTERS = {"crossentropy.__main__"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(name: str) -> list[tuple[str, str | None, int]]:
    """``(module, imported name or None, line)`` for every import in module ``name``, relative ones resolved."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(alias.name, None, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found += [(base, alias.name, node.lineno) for alias in node.names]
    return found


def targets(name: str) -> set[str]:
    """The package modules that module ``name`` imports (``from pkg import sub`` counts as importing pkg.sub)."""
    out = set()
    for module, imported, _ in imports(name):
        if imported and f"{module}.{imported}" in MODULES:
            out.add(f"{module}.{imported}")
        elif module in MODULES:
            out.add(module)
    return out - {name}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_import_reader_resolves_relative_and_deferred_imports():
    found = {(m, n) for m, n, _ in imports("crossentropy.learn.models.persist")}
    assert ("crossentropy.learn.io.modelfiles", "read_model_files") in found
    assert ("crossentropy.learn.models.tagger", "TokenTagger") in found  # deferred: inside a function


def test_no_import_cycles():
    assert cycles({name: targets(name) for name in MODULES}) == []


def test_no_private_names_imported_across_modules():
    """A private (underscore) name stays in its module. A package's private submodule (``torch/_cpu.py``) may be
    imported by the modules of that package, and only by them."""
    bad = []
    for name, path in MODULES.items():
        own_package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for module, imported, line in imports(name):
            if not module.startswith("crossentropy") or imported is None:
                continue
            if imported.startswith("_") and not imported.startswith("__"):
                if f"{module}.{imported}" in MODULES and module == own_package:
                    continue
                bad.append(f"{name}:{line} imports {imported} from {module}")
    assert bad == []


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports_only_what_the_layer_table_allows(layer):
    bad = []
    for name in MODULES:
        if not (name == layer or name.startswith(layer + ".")) or name in CLI_IMPORTERS:
            continue
        for module, imported, line in imports(name):
            full = {module, f"{module}.{imported}" if imported else module}
            for banned in FORBIDDEN[layer]:
                if any(m == banned or m.startswith(banned + ".") for m in full):
                    bad.append(f"{name}:{line} imports {module}{'.' + imported if imported else ''}")
    assert sorted(set(bad)) == []


FLAG = re.compile(r"(?<![\w-])--[a-z]")


def _message_strings(tree: ast.AST):
    """The string pieces of every ``raise`` and ``warnings.warn(...)`` in ``tree``, with their line numbers."""
    for node in ast.walk(tree):
        is_warn = (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "warn")
        if isinstance(node, ast.Raise) or is_warn:
            for piece in ast.walk(node):
                if isinstance(piece, ast.Constant) and isinstance(piece.value, str):
                    yield piece.lineno, piece.value


def test_the_message_scanner_finds_a_flag():
    code = 'import warnings\nraise ValueError(f"pass {x} or --labels-column")\nwarnings.warn("raise --epochs")\n'
    assert [line for line, text in _message_strings(ast.parse(code)) if FLAG.search(text)] == [2, 3]


def test_library_messages_name_parameters_not_flags():
    """Errors and warnings outside cli.py name the library's parameters (in backticks, which the CLI shows as its
    flags: cli.as_flags), never a command-line flag."""
    found = [f"{path.relative_to(PACKAGE)}:{line}: {text.strip()[:70]}"
             for path in sorted(PACKAGE.rglob("*.py")) if path.name != "cli.py"
             for line, text in _message_strings(ast.parse(path.read_text())) if FLAG.search(text)]
    assert found == []
