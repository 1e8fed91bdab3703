"""``inf-engine serve`` names its database at start, but never the database's password."""

from __future__ import annotations

from app.cli.server import start_line
from app.settings import Settings


def test_the_database_password_is_not_printed() -> None:
    url = "postgresql+asyncpg://inf:db-s3cret@db.internal:5432/inf"
    line = start_line(Settings(database_url=url, port=8000))

    assert "db-s3cret" not in line
    assert line == (
        "inf-engine on http://127.0.0.1:8000 (database postgresql+asyncpg://***@db.internal:5432/inf)"
    )


def test_a_sqlite_path_is_shown_as_it_is() -> None:
    line = start_line(Settings(database_url="sqlite+aiosqlite:///./data/inf-engine.sqlite"))

    assert line.endswith("(database sqlite+aiosqlite:///./data/inf-engine.sqlite)")
