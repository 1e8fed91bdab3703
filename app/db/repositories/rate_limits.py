"""Shared rate limits in Postgres: GCRA per alias and leased concurrency slots.

Every decision is one statement that locks the alias's row and reads ``clock_timestamp()``, so
concurrent processes are serialized by the database and timed by its clock (never check, then
write). The GCRA is the one of :func:`app.engine.resources.shared.gcra`; a grant also counts in
the learned state (:func:`app.engine.resources.learning.granted`), whose rare changes (a cut, the
provider's stated limits) are a locked read and a write in one transaction. Postgres only.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.engine.resources.learning import NOTHING, Learned
from app.engine.resources.shared import EPSILON_S, Admission, Rate, wanted

# NOTE: every decision is one statement: it runs as well in a session's transaction as on a
# connection in autocommit mode (the store's way: no BEGIN and COMMIT round trips).
Executor = AsyncSession | AsyncConnection

_CLOCK = "clock AS (SELECT extract(epoch FROM clock_timestamp())::float8 AS now)"

_ENSURE_ALIAS = text(
    "INSERT INTO rate_limits (alias, requests_tat, tokens_tat, blocked_until)"
    " VALUES (:alias, 0, 0, 0) ON CONFLICT DO NOTHING"
)

_ENSURE_SLOTS = text(
    "INSERT INTO rate_slots (alias, slot, owner, expires_at)"
    " SELECT :alias, g, NULL, 0 FROM generate_series(0, CAST(:limit AS integer) - 1) AS g"
    " ON CONFLICT DO NOTHING"
)

# NOTE: the clock is read before the row lock is granted; a decision timed a little early is
# only stricter (GCRA's bound holds for any time at or before the real one).
_LEARNED = (
    "learned_rpm, learned_tpm, learned_at, learned_from_headers, idle_s, requests_tat,"
    " blocked_until, grants_start, grants_cur, grants_prev"
)
_R_LEARNED = ", ".join("r." + column.strip() for column in _LEARNED.split(","))
_GRANTED = "d.wait <= :epsilon"
_AGE = "(d.now - d.grants_start)"
_SINCE = "greatest(d.rq_old, d.blocked_until, d.learned_at)"

# NOTE: a grant also counts in the learned state (see app.engine.resources.learning.granted),
# by its requests: a slice of several (app.engine.resources.slices) counts as that many.
_ACQUIRE = text(f"""
WITH {_CLOCK},
cur AS (
    SELECT r.alias, c.now, r.blocked_until, r.learned_at, r.idle_s, r.requests_tat AS rq_old,
           r.grants_start, r.grants_cur, r.grants_prev,
           greatest(r.requests_tat, c.now) AS rq_base, greatest(r.tokens_tat, c.now) AS tk_base
    FROM rate_limits r CROSS JOIN clock c WHERE r.alias = :alias FOR UPDATE OF r
),
decision AS (
    SELECT cur.*, greatest(0.0, blocked_until - now,
        rq_base + (least(CAST(:requests AS float8), :rq_cap) - :rq_cap) * :rq_iv - now,
        tk_base + (least(CAST(:tokens AS float8), :tk_cap) - :tk_cap) * :tk_iv - now) AS wait
    FROM cur
)
UPDATE rate_limits r SET
    requests_tat = CASE WHEN {_GRANTED} THEN d.rq_base + :requests * :rq_iv
                        ELSE r.requests_tat END,
    tokens_tat = CASE WHEN {_GRANTED} THEN d.tk_base + :tokens * :tk_iv
                      ELSE r.tokens_tat END,
    idle_s = CASE WHEN {_GRANTED} AND {_SINCE} > 0
                  THEN d.idle_s + greatest(0.0, d.now - {_SINCE}) ELSE r.idle_s END,
    grants_start = CASE WHEN NOT {_GRANTED} THEN r.grants_start
                        WHEN {_AGE} >= 120 THEN d.now
                        WHEN {_AGE} >= 60 THEN d.grants_start + 60 ELSE d.grants_start END,
    grants_prev = CASE WHEN NOT {_GRANTED} THEN r.grants_prev WHEN {_AGE} >= 120 THEN 0
                       WHEN {_AGE} >= 60 THEN d.grants_cur ELSE d.grants_prev END,
    grants_cur = CASE WHEN NOT {_GRANTED} THEN r.grants_cur WHEN {_AGE} >= 60 THEN :requests
                      ELSE d.grants_cur + :requests END
FROM decision d WHERE r.alias = d.alias
RETURNING d.wait, d.now, r.slots_wanted_at, {_R_LEARNED}
""")

_READ_LEARNED = text(
    f"SELECT extract(epoch FROM clock_timestamp())::float8, {_LEARNED}"
    " FROM rate_limits WHERE alias = :alias FOR UPDATE"
)

_WRITE_LEARNED = text(
    "UPDATE rate_limits SET learned_rpm = :rpm, learned_tpm = :tpm, learned_at = :at,"
    " learned_from_headers = :headers, idle_s = :idle,"
    " requests_tat = greatest(requests_tat, :tat_floor) WHERE alias = :alias"
)

_REFUND = text(f"""
WITH {_CLOCK}
UPDATE rate_limits SET tokens_tat = CASE
    WHEN CAST(:tokens AS float8) >= 0 THEN greatest(tokens_tat - :tokens * :iv, clock.now)
    ELSE greatest(tokens_tat, clock.now) - :tokens * :iv END
FROM clock WHERE alias = :alias
""")

_BLOCK = text(f"""
WITH {_CLOCK}
UPDATE rate_limits SET blocked_until = greatest(blocked_until, clock.now + :seconds)
FROM clock WHERE alias = :alias
""")

_BLOCKED_FOR = text(
    "SELECT greatest(0.0, blocked_until - extract(epoch FROM clock_timestamp())::float8)"
    " FROM rate_limits WHERE alias = :alias"
)

# A renewal finds the owner's own slot first; SKIP LOCKED lets concurrent takers spread out.
# A refusal marks the alias's slots as wanted (at most every 0.1 s: a waiter polls often).
_TAKE_SLOT = text(f"""
WITH {_CLOCK},
pick AS (
    SELECT s.alias, s.slot FROM rate_slots s CROSS JOIN clock c
    WHERE s.alias = :alias AND s.slot < :limit
      AND (s.owner = :owner OR s.owner IS NULL OR s.expires_at <= c.now)
    ORDER BY (s.owner IS NOT DISTINCT FROM :owner) DESC, s.slot
    LIMIT 1 FOR UPDATE OF s SKIP LOCKED
),
taken AS (
    UPDATE rate_slots s SET owner = :owner, expires_at = clock.now + :ttl
    FROM pick CROSS JOIN clock WHERE s.alias = pick.alias AND s.slot = pick.slot
    RETURNING s.slot
),
wanted AS (
    UPDATE rate_limits r SET slots_wanted_at = clock.now FROM clock
    WHERE r.alias = :alias AND r.slots_wanted_at < clock.now - 0.1
      AND NOT EXISTS (SELECT 1 FROM taken)
)
SELECT slot FROM taken
""")

_RENEW_SLOTS = text(f"""
WITH {_CLOCK}
UPDATE rate_slots s SET expires_at = clock.now + :ttl FROM clock
WHERE s.alias = :alias AND s.owner = ANY(CAST(:owners AS text[])) AND s.expires_at > clock.now
RETURNING s.owner
""")

# NOTE: a lease owner id is ``<host>-<pid>:<token>-<n>`` (store_state.lease_owner); the part
# before ``-<n>`` names its process, whose liveness lock (app.db.owner_locks) is free once the
# process is gone. Ids of any other shape never match, so their slots are never freed here.
_FREE_DEAD_SLOTS = text(f"""
WITH {_CLOCK}
UPDATE rate_slots s SET owner = NULL, expires_at = 0 FROM clock
WHERE s.alias = :alias AND s.owner IS NOT NULL AND s.expires_at > clock.now
  AND pg_try_advisory_xact_lock(
      :lock_class, hashtext(substring(s.owner FROM '^(.+:[0-9a-f]{{16}})-[0-9a-f]+$')))
RETURNING s.owner
""")

_RELEASE_SLOT = text(
    "UPDATE rate_slots SET owner = NULL, expires_at = 0 WHERE alias = :alias AND owner = :owner"
)

_STATE = text(
    f"SELECT c.now, r.requests_tat, r.tokens_tat, r.blocked_until, {_R_LEARNED} FROM"
    " (SELECT extract(epoch FROM clock_timestamp())::float8 AS now) AS c"
    " LEFT JOIN rate_limits r ON r.alias = :alias"
)

_LIVE_OWNERS = text(
    "SELECT owner FROM rate_slots WHERE alias = :alias AND owner IS NOT NULL AND expires_at > :now"
)


@dataclass(frozen=True, slots=True)
class StoredState:
    """An alias's row as read, at database time ``now`` (zeros when it has none yet)."""

    now: float
    requests_tat: float
    tokens_tat: float
    blocked_until: float
    owners: list[str]
    learned: Learned = NOTHING


async def ensure_alias(session: Executor, alias: str, slots: int | None) -> None:
    """Create the alias's state row and ``slots`` slot rows if missing (idempotent)."""
    await session.execute(_ENSURE_ALIAS, {"alias": alias})
    if slots:
        await session.execute(_ENSURE_SLOTS, {"alias": alias, "limit": slots})


async def acquire(
    session: Executor,
    alias: str,
    requests: int,
    tokens: int,
    rates: tuple[Rate, Rate],
) -> tuple[Admission, Learned]:
    """Debit ``requests`` and ``tokens`` together if both budgets allow, else nothing; with
    the alias's learned state afterwards."""
    rq, tk = rates
    params = {"alias": alias, "requests": requests, "tokens": tokens, "epsilon": EPSILON_S}
    params |= {"rq_iv": rq.interval_s, "rq_cap": rq.capacity}
    params |= {"tk_iv": tk.interval_s, "tk_cap": tk.capacity}
    wait, now, slots_wanted_at, *learned = (await session.execute(_ACQUIRE, params)).one()
    granted = wait <= EPSILON_S
    contended = wanted(slots_wanted_at, now)
    admission = Admission(granted, 0.0 if granted else wait, now, contended=contended)
    return admission, _learned(learned)


async def read_learned(session: AsyncSession, alias: str) -> tuple[Learned, float]:
    """The alias's learned state, its row locked until the transaction ends, and the time."""
    now, *learned = (await session.execute(_READ_LEARNED, {"alias": alias})).one()
    return _learned(learned), float(now)


async def write_learned(
    session: AsyncSession, alias: str, learned: Learned, tat_floor: float = 0.0
) -> None:
    """Set the alias's learned rates (read with :func:`read_learned` in this transaction),
    and push the request TAT to at least ``tat_floor``."""
    params = {"alias": alias, "rpm": learned.rpm, "tpm": learned.tpm, "at": learned.at}
    params |= {"headers": learned.from_headers, "idle": learned.idle_s, "tat_floor": tat_floor}
    await session.execute(_WRITE_LEARNED, params)


async def refund(session: Executor, alias: str, tokens: int, rate: Rate) -> None:
    """Give back ``tokens`` (negative: charge them) on the alias's token budget."""
    await session.execute(_REFUND, {"alias": alias, "tokens": tokens, "iv": rate.interval_s})


async def block(session: Executor, alias: str, seconds: float) -> None:
    """Refuse the alias for ``seconds`` from now on the database clock (never shortens)."""
    await session.execute(_BLOCK, {"alias": alias, "seconds": seconds})


async def blocked_for(session: Executor, alias: str) -> float:
    """Seconds until the alias is no longer blocked."""
    return float(await session.scalar(_BLOCKED_FOR, {"alias": alias}) or 0.0)


async def take_slot(session: Executor, alias: str, owner: str, ttl_s: float, limit: int) -> bool:
    """Lease (or renew) one of the alias's first ``limit`` slots to ``owner`` for ``ttl_s``;
    a refusal marks the alias's slots as wanted."""
    params = {"alias": alias, "owner": owner, "ttl": ttl_s, "limit": limit}
    return (await session.execute(_TAKE_SLOT, params)).first() is not None


async def renew_slots(
    session: Executor, alias: str, owners: Collection[str], ttl_s: float
) -> set[str]:
    """Renew the live leases of ``owners`` for ``ttl_s`` in one statement; the owners of none."""
    params = {"alias": alias, "owners": list(owners), "ttl": ttl_s}
    renewed = (await session.scalars(_RENEW_SLOTS, params)).all()
    return set(owners) - set(renewed)


async def free_dead_slots(session: Executor, alias: str, lock_class: int) -> int:
    """Free the alias's live slots whose process holds no liveness lock of ``lock_class`` (it
    died: see :mod:`app.db.owner_locks`), in one statement; how many."""
    freed = await session.scalars(_FREE_DEAD_SLOTS, {"alias": alias, "lock_class": lock_class})
    return len(freed.all())


async def release_slot(session: Executor, alias: str, owner: str) -> None:
    """Free every slot ``owner`` holds for the alias."""
    await session.execute(_RELEASE_SLOT, {"alias": alias, "owner": owner})


async def read_state(session: AsyncSession, alias: str) -> StoredState:
    """The alias's GCRA times, block end and live lease owners, changing nothing."""
    now, requests_tat, tokens_tat, blocked_until, *learned = (
        await session.execute(_STATE, {"alias": alias})
    ).one()
    owners = (await session.scalars(_LIVE_OWNERS, {"alias": alias, "now": now})).all()
    times = (requests_tat or 0.0, tokens_tat or 0.0, blocked_until or 0.0)
    return StoredState(now, *times, [*owners], _learned(learned))


def _learned(row: Sequence[Any]) -> Learned:
    """A learned state from its columns, in ``_LEARNED`` order (zeros for a missing row)."""
    rpm, tpm, at, headers, idle, tat, blocked, start, cur, prev = (value or 0 for value in row)
    return Learned(
        rpm=float(rpm),
        tpm=float(tpm),
        at=float(at),
        from_headers=bool(headers),
        idle_s=float(idle),
        tat=float(tat),
        blocked_until=float(blocked),
        grants_start=float(start),
        grants_cur=float(cur),
        grants_prev=float(prev),
    )
