"""The layering of DESIGN §2, checked on every import statement (including local ones)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "app"

WEB_DB_HTTP_METRICS = {
    "fastapi",
    "starlette",
    "sse_starlette",
    "uvicorn",
    "sqlalchemy",
    "alembic",
    "asyncpg",
    "aiosqlite",
    "httpx",
    "aiohttp",
    "requests",
    "prometheus_client",
}
ENGINE_THIRD_PARTY = {"pydantic", "pydantic_core", "rapidfuzz", "re2", "yaml"}


def imports_of(path: Path) -> list[str]:
    """Every module name imported by a file, absolute (relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    inside = path.is_relative_to(ROOT)
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1]) if inside else ""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append(_absolute(node, package))
    return found


def _absolute(node: ast.ImportFrom, package: str) -> str:
    if not node.level:
        return node.module or ""
    base = package.split(".")[: len(package.split(".")) - node.level + 1]
    return ".".join([*base, node.module] if node.module else base)


def layer_files(layer: str) -> list[Path]:
    return sorted((APP / layer).rglob("*.py"))


def violations(
    layer: str,
    allowed: set[str] | None,
    banned: set[str],
    banned_app: set[str],
    exempt: frozenset[str] = frozenset(),
) -> list[str]:
    found = []
    for path in layer_files(layer):
        for name in imports_of(path):
            top = name.split(".")[0]
            app_part = ".".join(name.split(".")[:2])
            bad = (top in banned or app_part in banned_app) and name not in exempt
            if allowed is not None and top not in allowed and top != "app":
                bad = True
            if bad:
                found.append(f"{path.relative_to(ROOT)} imports {name}")
    return found


def test_engine_is_pure() -> None:
    allowed = set(sys.stdlib_module_names) | ENGINE_THIRD_PARTY
    banned_app = {"app.llm", "app.db", "app.services", "app.api", "app.settings", "app.cli"}
    assert violations("engine", allowed, WEB_DB_HTTP_METRICS, banned_app) == []


def test_llm_layer_depends_only_on_engine() -> None:
    banned_app = {"app.db", "app.services", "app.api", "app.cli"}
    banned = WEB_DB_HTTP_METRICS - {"aiohttp"}
    assert violations("llm", None, banned, banned_app) == []


@pytest.mark.parametrize(
    ("layer", "banned", "banned_app"),
    [
        (
            "db",
            {"fastapi", "starlette", "sse_starlette", "prometheus_client"},
            {"app.api", "app.services"},
        ),
        ("services", {"fastapi", "starlette", "sse_starlette"}, {"app.api"}),
    ],
)
def test_service_layers(layer: str, banned: set[str], banned_app: set[str]) -> None:
    assert violations(layer, None, banned, banned_app) == []


def test_api_holds_no_sql() -> None:
    """Routes receive a session to hand to services and to commit; every query is in app.db."""
    banned = {"sqlalchemy", "asyncpg", "aiosqlite"}
    session_type = frozenset({"sqlalchemy.ext.asyncio"})
    assert violations("api", None, banned, {"app.db"}, exempt=session_type) == []


def test_checker_sees_violations(tmp_path: Path) -> None:
    """The checker itself must catch a forbidden import, or the tests above prove nothing."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    import httpx\n    from sqlalchemy import select\n")
    assert {"httpx", "sqlalchemy"} <= {name.split(".")[0] for name in imports_of(bad)}
