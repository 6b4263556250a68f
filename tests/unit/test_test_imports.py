"""Test helpers live in tests/support: no test module imports a conftest or another test module (a helper
found in one test module and imported by ten others was how the DR helpers used to be shared)."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def _imported(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            names.append("." * node.level + (node.module or ""))
        elif isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
    return names


def test_no_test_imports_a_conftest_or_a_test_module() -> None:
    found = {
        f"{path.relative_to(TESTS)}: {name}"
        for path in TESTS.rglob("*.py")
        for name in _imported(path)
        if name.split(".")[-1] == "conftest" or name.split(".")[-1].startswith("test_")
    }
    assert not found, sorted(found)
