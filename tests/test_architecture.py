"""Import direction: core/ imports none of ingest/service/eval; those never import each other."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("core", "ingest", "service", "eval")


def _imports(pkg: str) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for path in (REPO / pkg).rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top in PACKAGES and top != pkg:
                    found.add((str(path.relative_to(REPO)), name))
    return found


@pytest.mark.parametrize("pkg", PACKAGES)
def test_import_direction(pkg: str) -> None:
    allowed = {"core"} if pkg != "core" else set()
    bad = {(f, m) for f, m in _imports(pkg) if m.split(".")[0] not in allowed}
    assert not bad, f"{pkg} imports {sorted(bad)}"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _graph(pkg: str) -> dict[str, set[str]]:
    """Module → the modules of the same package it imports (anywhere in the file, lazy imports
    inside functions included: they hide cycles rather than remove them)."""
    modules = {_module_name(p): p for p in (REPO / pkg).rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for mod, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        skip = {id(n) for t in ast.walk(tree) if _is_type_checking(t) for n in ast.walk(t)}
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                # `from pkg.sub import name`: the submodule `name` when there is one
                targets = [
                    f"{node.module}.{a.name}"
                    if f"{node.module}.{a.name}" in modules
                    else node.module
                    for a in node.names
                ]
            graph[mod] |= {t for t in targets if t in modules and t != mod}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
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


@pytest.mark.parametrize("pkg", PACKAGES)
def test_no_import_cycle_inside_a_package(pkg: str) -> None:
    assert not _cycles(_graph(pkg)), f"import cycles in {pkg}: {_cycles(_graph(pkg))}"


def test_the_cycle_check_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
