"""Everything that differs between Postgres and SQLite, and nothing else.

The rest of ``app.db`` is portable SQLAlchemy; when it needs behaviour that depends on the
database it asks this module.

NOTE: [SQLite transactions] SQLite is the single-process embedded default. It has one writer at a
time and no row locks. The driver opens a transaction at the first INSERT/UPDATE/DELETE (reads
before it see the latest committed data), so a unit of work takes the write lock at its first write
and holds it to commit; ``busy_timeout`` makes a second writer wait instead of failing. Statements
that claim rows therefore re-check their conditions in the UPDATE itself, which is what makes a
plain SELECT enough where Postgres needs ``FOR UPDATE``. Needs SQLite 3.35 or newer (RETURNING).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import orjson
from sqlalchemy import JSON, Connection, Select, bindparam, column, event, func, make_url, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.sql import FromClause
from sqlalchemy.sql.dml import Insert
from sqlalchemy.types import TypeEngine

SQLITE_MIN_VERSION = (3, 35, 0)
SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=5000",
)
# NOTE: [ping on checkout] A connection is checked before use only when it sat idle longer than
# this (HikariCP's "alive bypass window"). A pre-ping on every checkout costs three round trips
# (BEGIN, a query, ROLLBACK) before each unit of work, and under load each round trip waits for
# the database's process to be scheduled: it tripled status-poll latency.
PING_AFTER_IDLE_S = 2.0
POSTGRES_POOL: dict[str, Any] = {
    "pool_size": 10,
    "max_overflow": 10,
    "pool_recycle": 1800,
    "connect_args": {"server_settings": {"application_name": "inf-engine"}},
}

S = TypeVar("S", bound=Select[Any])


def is_sqlite_url(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def is_memory_sqlite(url: str) -> bool:
    """Whether ``url`` is a SQLite database in memory: one process's alone, no file to share."""
    if not is_sqlite_url(url):
        return False
    database = make_url(url).database or ""
    return database in ("", ":memory:") or "mode=memory" in url


def is_sqlite(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "sqlite"


# -- engines -------------------------------------------------------------------------------


def engine_options(url: str) -> dict[str, Any]:
    """Keyword arguments for ``create_async_engine``: a pool for Postgres, defaults for SQLite,
    and orjson for JSON columns (a batch of results is one JSON document to encode)."""
    pool = {} if is_sqlite_url(url) else POSTGRES_POOL
    return {**pool, "json_serializer": _json_dumps, "json_deserializer": _json_loads}


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def _json_loads(value: Any) -> Any:
    # SQLite stores a JSON number in a JSON column as a number (the column's affinity is
    # NUMERIC) and hands it back as one.
    return orjson.loads(value) if isinstance(value, str | bytes) else value


def prepare(url: str) -> None:
    """Create the directory of a SQLite database file (SQLite creates the file, not its folder)."""
    if not is_sqlite_url(url):
        return
    database = make_url(url).database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def install(engine: AsyncEngine, ping_after_idle_s: float = PING_AFTER_IDLE_S) -> None:
    """Per-connection settings: the SQLite pragmas (WAL, foreign keys, busy timeout); on
    Postgres, a liveness check of connections idle for ``ping_after_idle_s`` or longer."""
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_connect)
        return
    dialect = engine.sync_engine.dialect

    def ping_if_idle(connection: DBAPIConnection, record: ConnectionPoolEntry, _: Any) -> None:
        """A dead idle connection raises ``DisconnectionError``: the pool then connects anew."""
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < ping_after_idle_s:
            return
        try:
            alive = dialect.do_ping(connection)
        except Exception as exc:
            raise DisconnectionError("an idle connection is gone") from exc
        if not alive:
            raise DisconnectionError("an idle connection is gone")

    event.listen(engine.sync_engine.pool, "checkin", _note_checkin)
    event.listen(engine.sync_engine.pool, "checkout", ping_if_idle)


def _note_checkin(connection: DBAPIConnection | None, record: ConnectionPoolEntry) -> None:
    record.info["idle_since"] = time.monotonic()


def _sqlite_connect(connection: DBAPIConnection, record: ConnectionPoolEntry) -> None:
    if sqlite3.sqlite_version_info < SQLITE_MIN_VERSION:
        raise RuntimeError(f"SQLite {sqlite3.sqlite_version} is too old: 3.35 or newer is needed")
    cursor = connection.cursor()
    for pragma in SQLITE_PRAGMAS:
        cursor.execute(pragma)
    cursor.close()


# -- statements ----------------------------------------------------------------------------


def _insert(session: AsyncSession, table: Any) -> postgresql.Insert | sqlite.Insert:
    return sqlite.insert(table) if is_sqlite(session) else postgresql.insert(table)


def upsert_from(
    session: AsyncSession,
    table: Any,
    columns: Sequence[str],
    source: Select[Any],
    keys: Sequence[str],
    update: Sequence[str],
) -> Insert:
    """``INSERT INTO table (columns) SELECT ... ON CONFLICT (keys) DO UPDATE SET`` ``update``.

    SQLite needs a WHERE in the SELECT to parse the ON CONFLICT; ``source`` should have one.
    """
    stmt = _insert(session, table).from_select(list(columns), source)
    return stmt.on_conflict_do_update(
        index_elements=list(keys), set_={name: stmt.excluded[name] for name in update}
    )


def add_from(
    session: AsyncSession,
    table: Any,
    columns: Sequence[str],
    source: Select[Any],
    keys: Sequence[str],
    counter: str,
) -> Insert:
    """``INSERT INTO table (columns) SELECT ... ON CONFLICT (keys) DO UPDATE SET counter =
    counter + excluded.counter``: counters created or moved by the source's amounts.

    SQLite needs a WHERE in the SELECT to parse the ON CONFLICT; ``source`` should have one.
    """
    stmt = _insert(session, table).from_select(list(columns), source)
    moved = table.c[counter] + stmt.excluded[counter]
    return stmt.on_conflict_do_update(index_elements=list(keys), set_={counter: moved})


def insert_ignore(
    session: AsyncSession, table: Any, values: Mapping[str, Any], keys: Sequence[str] | None
) -> Insert:
    """``INSERT ... ON CONFLICT (keys) DO NOTHING``: create a row unless it already exists
    (``keys`` None: unless it conflicts with a row on any unique constraint)."""
    return _insert(session, table).values(dict(values)).on_conflict_do_nothing(index_elements=keys)


def json_rows(
    session: AsyncSession, name: str, columns: Sequence[tuple[str, TypeEngine[Any]]]
) -> FromClause:
    """A table read from one JSON-array parameter ``name`` (execute with ``{name: [row dicts]}``).

    A batch of any size is then one bound value and one cached statement, where a multi-row
    VALUES would bind every cell and compile again for each batch size. JSON-typed columns
    keep their documents; the others are plain SQL values.
    """
    if not is_sqlite(session):
        fields = [column(field, type_) for field, type_ in columns]
        rows = func.jsonb_to_recordset(bindparam(name, type_=postgresql.JSONB()))
        return rows.table_valued(*fields).render_derived(name=name, with_types=True)
    each = func.json_each(bindparam(name, type_=JSON())).table_valued("value")
    return select(*[_sqlite_field(each.c.value, f, t) for f, t in columns]).subquery(name)


def _sqlite_field(value: Any, field: str, type_: TypeEngine[Any]) -> Any:
    path = f"$.{field}"
    if isinstance(type_, JSON):  # "->" keeps the JSON text of a document, json_extract unquotes
        return value.op("->")(path).label(field)
    return func.json_extract(value, path).label(field)


def lock_rows(session: AsyncSession, stmt: S, *, skip_locked: bool = False) -> S:
    """Postgres: ``FOR UPDATE [SKIP LOCKED]``. SQLite: unchanged, its writers are serialized."""
    if is_sqlite(session):
        return stmt
    return stmt.with_for_update(skip_locked=skip_locked)


async def lock_now(session: AsyncSession, stmt: Select[Any]) -> None:
    """Postgres: lock the selected rows until commit. SQLite: nothing to do (one writer)."""
    if not is_sqlite(session):
        await session.execute(stmt.with_for_update())


# -- migrations ----------------------------------------------------------------------------


def migration_options(dialect_name: str) -> dict[str, Any]:
    """Options for Alembic's ``context.configure``: SQLite alters tables by copying them."""
    return {"render_as_batch": dialect_name == "sqlite"}


def before_migration(connection: Connection) -> None:
    """SQLite: turn off foreign keys, or copying a table in batch mode would cascade deletes."""
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
