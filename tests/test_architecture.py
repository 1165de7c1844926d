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
