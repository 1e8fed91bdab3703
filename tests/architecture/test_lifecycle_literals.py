"""Statuses and event kinds are named, never spelled: app.lifecycle holds every one of them.

The rule: in app/, a string constant (docstrings aside) whose whole value is the value of a
JobStatus, ItemStatus, EventKind, RunStatus or WebhookState member is a violation, wherever it
stands (comparison, argument, keyword, dict key or value, set/tuple/list element, default...).
app/lifecycle.py defines them and app/db/migrations is frozen history. The engine cannot import
app.lifecycle, so it has its own rule: NodeStatus values are spelled only in NodeStatus itself.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

from app.engine.records import NodeStatus
from app.lifecycle import EventKind, ItemStatus, JobStatus, RunStatus, WebhookState

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "app"
LIFECYCLE_VALUES = frozenset(
    member.value
    for enum in (JobStatus, ItemStatus, EventKind, RunStatus, WebhookState)
    for member in enum
)
NODE_VALUES = frozenset(member.value for member in NodeStatus)
# Words that are the same strings but not statuses: (file, value) -> why.
NOT_STATUSES = {
    ("app/engine/profiler.py", "queued"): "a trace counter: calls waiting for a slot",
    ("app/engine/resources/metrics.py", "succeeded"): "a per-model request counter",
    ("app/services/runner/process.py", "failed"): "a control-pipe message, like 'ready'",
    # Optimization runs' training event kinds are everyday words; here they name other things.
    ("app/cli/jobs.py", "finished"): "a label of the job's finished_at time",
    ("app/db/repositories/results.py", "finished"): "a counter of finished items",
    ("app/services/optimization/projection.py", "budget"): "the request's budget field",
    ("app/services/optimizations/progress.py", "tested"): "a key of the stored run record",
    ("app/services/optimizations/view.py", "accepted"): "a step's accepted flag in its view",
    ("app/services/requests/dashboard_runs.py", "accepted"): "the same flag, read from the view",
}


def docstring_nodes(tree: ast.AST) -> set[int]:
    """The ids of the constants that are docstrings (first statement of a module/class/def)."""
    found = set()
    for node in ast.walk(tree):
        kinds = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
        if isinstance(node, kinds) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def exempt_class_nodes(tree: ast.AST, class_name: str) -> set[int]:
    """The ids of every node inside the class ``class_name`` (where the values are defined)."""
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            found |= {id(inner) for inner in ast.walk(node)}
    return found


def literals_in(source: str, values: frozenset[str], skip_class: str = "") -> list[tuple[int, str]]:
    """(line, value) of each string constant in ``source`` equal to one of ``values``."""
    tree = ast.parse(source)
    skipped = docstring_nodes(tree) | (
        exempt_class_nodes(tree, skip_class) if skip_class else set()
    )
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and node.value in values
        and id(node) not in skipped
    ]


def violations(paths: Iterable[Path], values: frozenset[str], skip_class: str = "") -> list[str]:
    found = []
    for path in paths:
        name = path.relative_to(ROOT).as_posix()
        for line, value in literals_in(path.read_text(encoding="utf-8"), values, skip_class):
            if (name, value) not in NOT_STATUSES:
                found.append(f"{name}:{line} spells {value!r}")
    return found


def app_files_outside_engine() -> list[Path]:
    exempt = {APP / "lifecycle.py"}
    return [
        path
        for path in sorted(APP.rglob("*.py"))
        if path not in exempt
        and not path.is_relative_to(APP / "db" / "migrations")
        and not path.is_relative_to(APP / "engine")
    ]


def test_no_status_or_event_literal_outside_lifecycle() -> None:
    assert violations(app_files_outside_engine(), LIFECYCLE_VALUES) == []


def test_engine_spells_node_statuses_only_in_node_status() -> None:
    engine = sorted((APP / "engine").rglob("*.py"))
    assert violations(engine, NODE_VALUES, skip_class="NodeStatus") == []


def test_checker_sees_planted_literals() -> None:
    """The checker must catch a status in each kind of place, or the tests above prove nothing."""
    planted = '''"""queued"""
def f(job, items):
    """running is fine in a docstring"""
    if job.status == "queued":
        items.labels("cancelled")
    send(kind="job_failed")
    return {"delivered": 1, "x": "pending"}, ("succeeded",), {"progress"}
'''
    found = {value for _, value in literals_in(planted, LIFECYCLE_VALUES)}
    expected = {"queued", "cancelled", "job_failed", "delivered", "pending", "succeeded"}
    assert found == expected | {"progress"}
    assert literals_in("class NodeStatus:\n    X = 'failed'\n", NODE_VALUES, "NodeStatus") == []
