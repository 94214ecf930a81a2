"""The package's import graph: no module imports another module's private name, and the graph over the
package's units (``darc.<module>`` or ``darc.<subpackage>``, function-level imports included) has no cycle,
so every import runs down the layers (e.g. the stages -> the peers' stages -> the bench stage)."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "darc"


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _imports(path: Path) -> list[tuple[str, str | None]]:
    """(module, imported name) of every absolute ``darc`` import in a file, at any depth."""
    found: list[tuple[str, str | None]] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("darc"):
            found += [(f"darc.{alias.name}", None) if node.module == "darc" else (node.module, alias.name)
                      for alias in node.names]  # ``from darc import experiment`` imports a module
        elif isinstance(node, ast.Import):
            found += [(alias.name, None) for alias in node.names if alias.name.startswith("darc")]
    return found


def unit(module: str) -> str:
    """The layer a module belongs to: ``darc.<first component>`` (a subpackage is one unit)."""
    return ".".join(module.split(".")[:2])


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(set(graph) | {w for ws in graph.values() for w in ws}):
        if v not in index:
            visit(v)
    return found


def test_no_module_imports_another_modules_private_name():
    offenders = [f"{name} imports {imported}.{what}" for name, path in _modules().items()
                 for imported, what in _imports(path)
                 if what and what.startswith("_") and imported != name]
    assert not offenders, offenders


def test_the_import_graph_over_the_packages_units_has_no_cycle():
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in _modules().items():
        for imported, _ in _imports(path):
            if unit(imported) != unit(name) and "darc" not in (unit(name), unit(imported)):  # the facade: darc/__init__
                graph[unit(name)].add(unit(imported))
    assert not cycles(graph), cycles(graph)


def test_the_cycle_check_finds_a_back_arrow():
    # the shape the package had before the bench stage left darc.experiment: experiment -> peers -> experiment
    assert cycles({"darc.experiment": {"darc.peers"}, "darc.peers": {"darc.experiment", "darc.io"}}) == [
        ["darc.experiment", "darc.peers"]]
    assert cycles({"darc.a": {"darc.b"}, "darc.b": {"darc.c"}}) == []
