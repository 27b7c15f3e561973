"""The import graph of the package: no cycle between its packages, no library importing a
pipeline, no pipeline importing another, and a dashboard that reads the catalog and the
analysis library but no pipeline. Read from the source with ``ast``, nothing imported."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

from tests.conftest import PROJECT

SOURCE = PROJECT / "src" / "attention_lab"
LIBRARIES = ("analysis", "attention", "datasets", "extraction", "models", "tasks", "training")


def imported_modules(path: Path) -> set[str]:
    """Every ``attention_lab`` module a file imports, at any depth of the file."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {m for m in found if m == "attention_lab" or m.startswith("attention_lab.")}


def unit(module: str) -> str:
    """The package (``attention_lab.analysis``) or top-level module a module belongs to."""
    parts = module.split(".")
    return ".".join(parts[:2])


def module_of(path: Path) -> str:
    parts = path.relative_to(SOURCE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_graph() -> dict[str, set[str]]:
    graph = defaultdict(set)
    for path in SOURCE.rglob("*.py"):
        source = unit(module_of(path))
        for target in map(unit, imported_modules(path)):
            if target != source and target != "attention_lab":
                graph[source].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every cycle found by a depth-first walk (each reported once, from its first node)."""
    found, state = [], {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                found.append(path[path.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return found


def test_no_cycle_between_the_packages():
    assert cycles(package_graph()) == []


def test_the_cycle_finder_finds_a_planted_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]


def test_no_library_imports_a_pipeline_and_no_pipeline_another():
    graph = package_graph()
    for library in LIBRARIES:
        assert "attention_lab.pipelines" not in graph[f"attention_lab.{library}"], library
    for path in (SOURCE / "pipelines").rglob("*.py"):
        own = module_of(path).split(".")[2:3]
        others = {
            m.split(".")[2]
            for m in imported_modules(path)
            if m.startswith("attention_lab.pipelines.") and len(m.split(".")) > 2
        }
        assert others <= set(own), f"{path.name} imports the pipelines {sorted(others - set(own))}"


def test_the_dashboard_imports_no_pipeline():
    for path in (PROJECT / "dashboard").rglob("*.py"):
        assert not any(m.startswith("attention_lab.pipelines") for m in imported_modules(path)), (
            path
        )
