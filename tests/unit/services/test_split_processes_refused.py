"""``serve --no-runner`` and ``worker`` refuse what cannot work, before starting anything.

A SQLite database serves one process (its runner takes over every unfinished job at start),
so the API and the runner cannot live apart on it; a worker never migrates, so it refuses a
schema that is not at the head revision.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from app.cli import app
from tests.support.db import create_database, drop_database, require_server, sqlite_url


def run(args: list[str], database_url: str) -> Result:
    return CliRunner().invoke(app, args, env={"INF_DATABASE_URL": database_url})


@pytest.mark.parametrize("args", [["serve", "--no-runner"], ["worker"]])
def test_sqlite_is_refused_with_a_reason(args: list[str], tmp_path: Path) -> None:
    database = tmp_path / "one.sqlite"

    result = run(args, sqlite_url(database))

    assert result.exit_code == 1, result.output
    assert "need Postgres" in result.output
    assert not database.exists(), "nothing was started or migrated"


def test_the_no_runner_setting_is_refused_on_sqlite_too(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["serve"],
        env={"INF_DATABASE_URL": sqlite_url(tmp_path / "x.sqlite"), "INF_RUNNER_MODE": "none"},
    )

    assert result.exit_code == 1
    assert "need Postgres" in result.output


@pytest.mark.postgres
def test_a_worker_refuses_an_unmigrated_database() -> None:
    url = create_database(require_server())
    try:
        result = run(["worker", "--database-url", url], "sqlite+aiosqlite:///unused.sqlite")
    finally:
        drop_database(url)

    assert result.exit_code == 1, result.output
    assert "run `inf-engine migrate`" in result.output
