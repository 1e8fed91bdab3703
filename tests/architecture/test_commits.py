"""Routes never commit: a request's one commit is the session dependency's (app/api/deps.py)."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.architecture.test_layers import APP, ROOT

THE_COMMIT = ("app/api/deps.py", "get_session")


def commits_in(path: Path) -> list[tuple[str, int]]:
    """(enclosing function, line) of every ``.commit(`` call in the file."""
    found: list[tuple[str, int]] = []

    def visit(node: ast.AST, function: str) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            function = node.name
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "commit"
        ):
            found.append((function, node.lineno))
        for child in ast.iter_child_nodes(node):
            visit(child, function)

    visit(ast.parse(path.read_text(encoding="utf-8")), "")
    return found


def test_only_the_session_dependency_commits() -> None:
    stray = [
        f"{path.relative_to(ROOT)}:{line} commits (in {function or 'module'})"
        for path in sorted((APP / "api").rglob("*.py"))
        for function, line in commits_in(path)
        if (str(path.relative_to(ROOT)), function) != THE_COMMIT
    ]
    assert stray == []


def test_the_dependency_is_where_the_commit_is() -> None:
    assert [function for function, _ in commits_in(ROOT / THE_COMMIT[0])] == [THE_COMMIT[1]]


def test_checker_sees_a_commit(tmp_path: Path) -> None:
    route = tmp_path / "route.py"
    route.write_text("async def f(session):\n    x = 1\n    await session.commit()\n")
    assert commits_in(route) == [("f", 3)]
