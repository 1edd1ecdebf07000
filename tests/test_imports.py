"""The house's import rules (pyproject.toml `[tool.importlinter]`): `queries` reads through
ingest's vocabulary and the lake only, nothing imports the CLI, the vocabulary imports no room
above it, and no module imports itself back through others, at any depth. Plus import hygiene:
`logs --help` and `logs sql` do not pay for the heavy libraries at start."""

from __future__ import annotations

import subprocess
import sys

import grimp
import pytest

from tests.helpers import ROOT


def test_the_import_contracts_hold() -> None:
    res = subprocess.run(
        [sys.executable, "-m", "importlinter.cli", "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if res.returncode != 0:  # pragma: no cover - the report says which import broke what
        pytest.fail(res.stdout[-3000:] + res.stderr[-1000:])


def cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """One cycle through each module that is on one (depth-first, module by module)."""
    found: list[list[str]] = []
    on_cycle: set[str] = set()
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        path.append(module)
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            if state.get(imported) == 1:
                loop = path[path.index(imported) :]
                if not on_cycle.intersection(loop):
                    found.append([*loop, imported])
                on_cycle.update(loop)
            elif imported not in state:
                visit(imported, path)
        path.pop()
        state[module] = 2

    for module in sorted(graph.modules):
        if module not in state:
            visit(module, [])
    return found


def test_no_module_imports_itself_back() -> None:
    graph = grimp.build_graph("ingest", "queries", cache_dir=None)
    assert cycles(graph) == []


def test_the_cycle_check_finds_a_cycle() -> None:
    graph = grimp.ImportGraph()
    for importer, imported in (("a.x", "a.y"), ("a.y", "a.z"), ("a.z", "a.x"), ("a.z", "a.w")):
        graph.add_import(importer=importer, imported=imported)
    assert cycles(graph) == [["a.x", "a.y", "a.z", "a.x"]]


@pytest.mark.parametrize(
    ("command", "not_loaded"),
    [
        ("import ingest.cli", ("polars", "pyarrow", "deltalake", "duckdb", "redis", "apscheduler")),
        ("import queries", ("polars", "deltalake", "redis", "apscheduler")),
        ("import ingest.records", ("polars", "pyarrow", "deltalake", "duckdb", "redis")),
    ],
)
def test_heavy_libraries_are_imported_where_they_are_used(
    command: str, not_loaded: tuple[str, ...]
) -> None:
    check = f"{command}; import sys; print(sorted(m for m in {not_loaded!r} if m in sys.modules))"
    res = subprocess.run([sys.executable, "-c", check], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"
