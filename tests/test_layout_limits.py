"""The house rules a newcomer can rely on: no module in src/ or dashboard/ over 400 lines and
no function over 50, read from the source with ``ast``."""

from __future__ import annotations

import ast

from tests.conftest import PROJECT

MODULE_LINES, FUNCTION_LINES = 400, 50
SOURCES = [*(PROJECT / "src").rglob("*.py"), *(PROJECT / "dashboard").rglob("*.py")]


def long_functions(source: str, limit: int) -> list[tuple[str, int]]:
    """(name, lines) of every function or method longer than ``limit`` lines, decorators and
    docstring included."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            if (lines := node.end_lineno - first + 1) > limit:
                found.append((node.name, lines))
    return found


def test_no_module_is_over_400_lines():
    long = {
        str(p.relative_to(PROJECT)): n
        for p in SOURCES
        if (n := len(p.read_text().splitlines())) > MODULE_LINES
    }
    assert not long, long


def test_no_function_is_over_50_lines():
    long = {
        str(p.relative_to(PROJECT)): f
        for p in SOURCES
        if (f := long_functions(p.read_text(), FUNCTION_LINES))
    }
    assert not long, long


def test_the_function_finder_counts_lines():
    body = "\n".join(f"    x{i} = {i}" for i in range(60))
    assert long_functions(f"def f():\n{body}\n", FUNCTION_LINES) == [("f", 61)]
    assert long_functions("def g():\n    return 1\n", FUNCTION_LINES) == []
