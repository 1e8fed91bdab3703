"""Shared rate limits in SQLite: an alias's whole state read and written in one short
``BEGIN IMMEDIATE`` transaction, so every process on the machine using the file shares it.

``BEGIN IMMEDIATE`` takes the database's write lock before the read, so no other process can
decide between this read and its write (a deferred transaction could not upgrade to a write
once another process wrote, and would fail instead of waiting); the busy timeout makes a
second process wait for the lock. The rules of a decision are the engine's
(:class:`~app.engine.resources.shared.AliasState`); this module only loads and stores the
state, in the tables the Postgres store uses (``rate_limits``; ``rate_slots``: here one row
per live lease, each taken and given back by itself, the lease rule in SQL). The functions
are synchronous, on a plain ``sqlite3`` connection in autocommit mode
(:func:`app.db.session.sqlite_file_connection`), so that a whole decision is one hop to the
thread that holds the connection. SQLite only::

    with immediate(connection):
        state = read_state(connection, "fast", leases=False)
        ...
        write_state(connection, "fast", state)
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from app.engine.resources.learning import Learned
from app.engine.resources.shared import AliasState

_COLUMNS = (
    "requests_tat, tokens_tat, blocked_until, learned_rpm, learned_tpm, learned_at,"
    " learned_from_headers, idle_s, grants_start, grants_cur, grants_prev, slots_wanted_at"
)
_NAMES = [name.strip() for name in _COLUMNS.split(",")]

_READ = f"SELECT {_COLUMNS} FROM rate_limits WHERE alias = :alias"

_WRITE = (
    f"INSERT INTO rate_limits (alias, {_COLUMNS})"
    f" VALUES (:alias, {', '.join(':' + name for name in _NAMES)})"
    " ON CONFLICT (alias) DO UPDATE SET "
    + ", ".join(f"{name} = excluded.{name}" for name in _NAMES)
)

_LEASES = "SELECT owner, expires_at FROM rate_slots WHERE alias = :alias"

_RENEW_LEASE = (
    "UPDATE rate_slots SET expires_at = :until"
    " WHERE alias = :alias AND owner = :owner AND expires_at > :now"
)

_RENEW_LEASES = (
    "UPDATE rate_slots SET expires_at = :until"
    " WHERE alias = :alias AND expires_at > :now"
    " AND owner IN (SELECT value FROM json_each(:owners)) RETURNING owner"
)

_PURGE_LEASES = "DELETE FROM rate_slots WHERE alias = :alias AND expires_at <= :now"

_HELD = "SELECT count(*), coalesce(max(slot), -1) FROM rate_slots WHERE alias = :alias"

_ADD_LEASE = (
    "INSERT INTO rate_slots (alias, slot, owner, expires_at) VALUES (:alias, :slot, :owner, :until)"
)

_DROP_LEASE = "DELETE FROM rate_slots WHERE alias = :alias AND owner = :owner"

_DROP_LEASES = (
    "DELETE FROM rate_slots"
    " WHERE alias = :alias AND owner IN (SELECT value FROM json_each(:owners))"
)

_LIVE_LEASE_OWNERS = "SELECT owner FROM rate_slots WHERE alias = :alias AND expires_at > :now"

_WANTED = (
    "INSERT INTO rate_limits (alias, requests_tat, tokens_tat, blocked_until, slots_wanted_at)"
    " VALUES (:alias, 0, 0, 0, :now)"
    " ON CONFLICT (alias) DO UPDATE SET slots_wanted_at = excluded.slots_wanted_at"
)


@contextmanager
def immediate(connection: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``connection`` (in autocommit mode) in a ``BEGIN IMMEDIATE`` transaction, committed
    when the block ends, rolled back if it raises."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield connection
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


def read_state(connection: sqlite3.Connection, alias: str, *, leases: bool) -> AliasState:
    """The alias's state (zeros when it has none yet); its leases only if ``leases``."""
    row = connection.execute(_READ, {"alias": alias}).fetchone()
    state = AliasState() if row is None else _state(row)
    if leases:
        held = connection.execute(_LEASES, {"alias": alias}).fetchall()
        state.leases = {str(owner): float(until) for owner, until in held}
    return state


def write_state(connection: sqlite3.Connection, alias: str, state: AliasState) -> None:
    """Store the alias's budgets, pause and learned state (not its leases)."""
    connection.execute(_WRITE, {"alias": alias, **_columns(state)})


def take_lease(
    connection: sqlite3.Connection,
    alias: str,
    owner: str,
    cap: int | None,
    span: tuple[float, float],
) -> bool:
    """:meth:`AliasState.lease <app.engine.resources.shared.AliasState.lease>` on the rows,
    for ``span`` = (now, until): renew ``owner``'s live lease, or drop the expired ones and
    take one unless ``cap`` are held (a refusal marks the alias's slots as wanted). One row
    per lease, so a decision costs about the same with 8 slots or 1,000. In an
    :func:`immediate` transaction."""
    now, until = span
    params = {"alias": alias, "owner": owner, "now": now, "until": until}
    if connection.execute(_RENEW_LEASE, params).rowcount:
        return True
    connection.execute(_PURGE_LEASES, params)
    held, top = connection.execute(_HELD, params).fetchone()
    if cap is not None and held >= cap:
        connection.execute(_WANTED, params)
        return False
    connection.execute(_ADD_LEASE, {**params, "slot": top + 1})
    return True


def renew_leases(
    connection: sqlite3.Connection,
    alias: str,
    owners: Collection[str],
    span: tuple[float, float],
) -> set[str]:
    """Renew the live leases of ``owners`` for ``span`` = (now, until), in one statement;
    the owners of none. In an :func:`immediate` transaction."""
    now, until = span
    params = {"alias": alias, "owners": json.dumps(list(owners)), "now": now, "until": until}
    renewed = {owner for (owner,) in connection.execute(_RENEW_LEASES, params).fetchall()}
    return set(owners) - renewed


def live_lease_owners(connection: sqlite3.Connection, alias: str, now: float) -> list[str]:
    """The owners of the alias's leases that have not lapsed at ``now``."""
    rows = connection.execute(_LIVE_LEASE_OWNERS, {"alias": alias, "now": now}).fetchall()
    return [str(owner) for (owner,) in rows]


def drop_leases(connection: sqlite3.Connection, alias: str, owners: Collection[str]) -> None:
    """Give back the leases of ``owners``, in one statement. In an :func:`immediate`
    transaction."""
    connection.execute(_DROP_LEASES, {"alias": alias, "owners": json.dumps(list(owners))})


def drop_lease(connection: sqlite3.Connection, alias: str, owner: str) -> None:
    """Give ``owner``'s lease back (nothing if it is gone); one statement, atomic alone."""
    connection.execute(_DROP_LEASE, {"alias": alias, "owner": owner})


def _state(row: Sequence[Any]) -> AliasState:
    """A state from its columns, in ``_COLUMNS`` order."""
    rq, tk, bu, rpm, tpm, at, headers, idle, start, cur, prev, wanted = (
        value or 0 for value in row
    )
    learned = Learned(
        rpm=float(rpm),
        tpm=float(tpm),
        at=float(at),
        from_headers=bool(headers),
        idle_s=float(idle),
        tat=float(rq),
        blocked_until=float(bu),
        grants_start=float(start),
        grants_cur=float(cur),
        grants_prev=float(prev),
    )
    state = AliasState(float(rq), float(tk), float(bu), learned=learned)
    state.slots_wanted_at = float(wanted)
    return state


def _columns(state: AliasState) -> dict[str, Any]:
    """The state's columns by name (the learned state as the request TAT and pause mirror it)."""
    learned = state.mirrored()
    return {
        "requests_tat": state.requests_tat,
        "tokens_tat": state.tokens_tat,
        "blocked_until": state.blocked_until,
        "learned_rpm": learned.rpm,
        "learned_tpm": learned.tpm,
        "learned_at": learned.at,
        "learned_from_headers": learned.from_headers,
        "idle_s": learned.idle_s,
        "grants_start": learned.grants_start,
        "grants_cur": learned.grants_cur,
        "grants_prev": learned.grants_prev,
        "slots_wanted_at": state.slots_wanted_at,
    }
