"""The shared rate store on SQLite: one budget for every process using the database file.

The HTTP process of ``serve`` and its runner child (and any process of the machine on the same
file) read and write each alias's state in one short ``BEGIN IMMEDIATE`` transaction (see
:mod:`app.db.repositories.rate_limits_sqlite`), and decide by the rules of the in-memory store
(:class:`~app.engine.resources.shared.AliasState`), timed by the machine's clock, which all of
them share. Each store holds one connection of its own, used by one thread: a decision is one
hop to that thread (the transaction's statements and the rule all run there), and a process's
decisions wait for each other in order rather than in SQLite's busy handler. A refused slot
gives back the leases of processes of this machine that are gone (killed, say) at once, at
most once a second per alias (:mod:`app.services.limiting.liveness`), instead of leaving
them taken until they lapse::

    store = SqliteRateStore("sqlite+aiosqlite:///data/inf-engine.sqlite", limits)
    admission = await store.acquire("fast", tokens=1200)
    await store.aclose()
"""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
import time
from collections.abc import Callable, Collection, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from app.db.repositories import rate_limits_sqlite as rates
from app.db.session import sqlite_file_connection
from app.engine.resources.learning import LearningPolicy
from app.engine.resources.shared import Admission, AliasLimits, AliasState, limits_for
from app.engine.resources.store_state import StoreSnapshot
from app.services.limiting.liveness import DeadCheck, holder_is_gone

T = TypeVar("T")
Rule = Callable[[AliasState, AliasLimits, float], T]


class SqliteRateStore:
    """:class:`~app.engine.resources.shared.SharedRateStore` on a SQLite database file."""

    def __init__(
        self,
        url: str,
        limits: Mapping[str, AliasLimits],
        learning: LearningPolicy | None = None,
    ) -> None:
        self._url = url
        self._limits = dict(limits)
        self.learning = learning or LearningPolicy()
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rate-store")
        self._connection: sqlite3.Connection | None = None
        self._dead_check = DeadCheck()

    async def aclose(self) -> None:
        """Close the store's connection and its thread."""
        await self._run(self._close)
        self._thread.shutdown(wait=False)

    async def _run(self, work: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, work)

    def _open(self) -> sqlite3.Connection:
        if self._connection is None:
            self._connection = sqlite_file_connection(self._url)
        return self._connection

    def _close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    async def _apply(self, alias: str, rule: Rule[T]) -> T:
        """``rule`` on the alias's state, written back if it changed, in one transaction."""
        limits = limits_for(self._limits, alias)
        return await self._run(lambda: self._decide(alias, limits, rule))

    def _decide(self, alias: str, limits: AliasLimits, rule: Rule[T]) -> T:
        """In the store's thread: read, apply ``rule`` and write in one transaction."""
        with rates.immediate(self._open()) as connection:
            # NOTE: the clock is read once the write lock is held: decisions are timed in the
            # order they are made.
            now = time.time()
            state = rates.read_state(connection, alias, leases=False)
            before = dataclasses.replace(state)
            result = rule(state, limits, now)
            if state != before:
                rates.write_state(connection, alias, state)
        return result

    async def acquire(self, alias: str, requests: int = 1, tokens: int = 0) -> Admission:
        def admit(state: AliasState, limits: AliasLimits, now: float) -> Admission:
            return state.admit(limits, now, self.learning, requests, tokens)

        return await self._apply(alias, admit)

    async def refund(self, alias: str, tokens: int) -> None:
        def give_back(state: AliasState, limits: AliasLimits, now: float) -> None:
            state.refund(limits, now, self.learning, tokens)

        await self._apply(alias, give_back)

    async def acquire_slot(self, alias: str, owner: str, ttl_s: float) -> bool:
        cap = limits_for(self._limits, alias).max_concurrent

        def lease() -> bool:
            with rates.immediate(self._open()) as connection:
                now = time.time()
                span = (now, now + ttl_s)
                if rates.take_lease(connection, alias, owner, cap, span):
                    return True
                if not self._freed_dead(connection, alias, now):
                    return False
                return rates.take_lease(connection, alias, owner, cap, span)

        return await self._run(lease)

    def _freed_dead(self, connection: sqlite3.Connection, alias: str, now: float) -> bool:
        """In the store's thread: give back the leases of dead processes of this machine
        (when a look is due); whether there were any."""
        if not self._dead_check.due(alias):
            return False
        owners = rates.live_lease_owners(connection, alias, now)
        dead = [found for found in owners if holder_is_gone(found)]
        rates.drop_leases(connection, alias, dead)
        return bool(dead)

    async def renew_slots(self, alias: str, owners: Collection[str], ttl_s: float) -> set[str]:
        limits_for(self._limits, alias)

        def renew() -> set[str]:
            with rates.immediate(self._open()) as connection:
                now = time.time()
                return rates.renew_leases(connection, alias, owners, (now, now + ttl_s))

        return await self._run(renew)

    async def release_slot(self, alias: str, owner: str) -> None:
        limits_for(self._limits, alias)
        await self._run(lambda: rates.drop_lease(self._open(), alias, owner))

    async def block(self, alias: str, seconds: float) -> None:
        def pause(state: AliasState, limits: AliasLimits, now: float) -> None:
            state.block(now, max(seconds, 0.0))

        await self._apply(alias, pause)

    async def blocked_for(self, alias: str) -> float:
        state, now = await self._read(alias, leases=False)
        return max(0.0, state.blocked_until - now)

    async def cut(self, alias: str, granted_at: float) -> None:
        def lower(state: AliasState, limits: AliasLimits, now: float) -> None:
            state.cut(limits, granted_at, now, self.learning)

        await self._apply(alias, lower)

    async def learn_limits(self, alias: str, rpm: int | None, tpm: int | None) -> None:
        def learn(state: AliasState, limits: AliasLimits, now: float) -> None:
            state.learn(limits, (rpm, tpm), now, self.learning)

        await self._apply(alias, learn)

    async def snapshot(self, alias: str) -> StoreSnapshot:
        limits = limits_for(self._limits, alias)
        state, now = await self._read(alias, leases=True)
        return state.snapshot(limits, now, self.learning)

    async def _read(self, alias: str, *, leases: bool) -> tuple[AliasState, float]:
        """The alias's state, read without the write lock, and the time it was read."""
        limits_for(self._limits, alias)

        def read() -> tuple[AliasState, float]:
            return rates.read_state(self._open(), alias, leases=leases), time.time()

        return await self._run(read)
