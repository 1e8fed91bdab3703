"""Import structure inside ``app.engine``: no cycles, counting imports inside functions.

A lazy import only hides a cycle from Python's loader; the modules still depend on each
other. ``if TYPE_CHECKING:`` imports are ignored (they never run).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ENGINE = ROOT / "app" / "engine"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def engine_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(ENGINE.rglob("*.py"))}


def runtime_imports(path: Path) -> Iterator[ast.Import | ast.ImportFrom]:
    """Import statements that run: module level and inside functions, not TYPE_CHECKING."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for stmt in node.body
        for inner in ast.walk(stmt)
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom) and id(node) not in skipped:
            yield node


def imported_engine_modules(path: Path, known: dict[str, Path]) -> set[str]:
    """Engine modules ``path`` imports (``from pkg import sub`` counts ``pkg.sub``)."""
    found: set[str] = set()
    for node in runtime_imports(path):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif node.module and not node.level:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in found if name in known}


def import_graph() -> dict[str, set[str]]:
    known = engine_modules()
    return {name: imported_engine_modules(path, known) for name, path in known.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path that returns to its start, or ``None``."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(name: str) -> list[str] | None:
        state[name] = 1
        path.append(name)
        for target in sorted(graph[name]):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        state[name] = 2
        path.pop()
        return None

    for name in sorted(graph):
        if name not in state and (cycle := visit(name)):
            return cycle
    return None


def test_engine_has_no_import_cycles() -> None:
    graph = import_graph()
    graph.pop("app.engine")  # the package face re-exports everything; nothing inside imports it
    for targets in graph.values():
        targets.discard("app.engine")
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_nothing_inside_the_engine_imports_the_package_face() -> None:
    graph = import_graph()
    importers = sorted(name for name, targets in graph.items() if "app.engine" in targets)
    assert importers == []


def test_module_does_not_know_the_executor() -> None:
    """``InferenceModule`` dispatches calls through a hook, as ``nn.Module`` knows nothing of fx."""
    imported = imported_engine_modules(ENGINE / "module.py", engine_modules())
    assert sorted(n for n in imported if n.startswith("app.engine.execution")) == []


def test_settings_do_not_know_the_profiler() -> None:
    """The profiler uses settings (``with TraceProfiler():``); settings take any observer,
    so not even a type annotation points back (TYPE_CHECKING imports count here)."""
    settings = ENGINE / "execution" / "settings.py"
    tree = ast.parse(settings.read_text(encoding="utf-8"))
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert "app.engine.profiler" not in imported
