"""The shared rate store on Postgres: no server beyond the database the service already uses.

Each decision is one statement on a pooled connection in autocommit mode (see
:mod:`app.db.repositories.rate_limits`): a statement is atomic by itself, so no ``BEGIN`` and
``COMMIT`` round trips are needed around it.

Given the database URL, the store also marks its process as alive (a session-level advisory
lock, :mod:`app.db.owner_locks`, taken before its first slot lease), and a refused slot frees
the slots of processes whose mark is gone (killed, say) at once, at most once a second per
alias, instead of leaving them taken until their lease lapses::

    store = PostgresRateStore(session_factory(engine), limits_of(resource_config), url=url)
    admission = await store.acquire("fast", tokens=1200)
    ...
    await store.aclose()
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Collection, Mapping
from contextlib import asynccontextmanager
from dataclasses import replace

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from app.db.owner_locks import SLOT_HOLDER_LOCK_CLASS, OwnerLock
from app.db.repositories import rate_limits
from app.engine.resources import learning
from app.engine.resources.learning import LearnedCache, LearningPolicy
from app.engine.resources.shared import Admission, AliasLimits, limits_for, rated
from app.engine.resources.store_state import (
    StoreSnapshot,
    budget_state,
    lease_holder,
    leases_by_holder,
)
from app.services.limiting.liveness import DeadCheck


class PostgresRateStore:
    """:class:`~app.engine.resources.shared.SharedRateStore` on Postgres."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        limits: Mapping[str, AliasLimits],
        learning: LearningPolicy | None = None,
        url: str | None = None,
    ) -> None:
        self._sessions = sessions
        self._alive = (
            None if url is None else OwnerLock(url, lease_holder(), SLOT_HOLDER_LOCK_CLASS)
        )
        self._marking = asyncio.Lock()
        self._marked = False
        self._dead_check = DeadCheck()
        bind = sessions.kw["bind"]
        assert isinstance(bind, AsyncEngine), "the session factory is bound to an engine"
        self._autocommit = bind.execution_options(isolation_level="AUTOCOMMIT")
        self._limits = dict(limits)
        self._ready: set[str] = set()
        self.learning = learning or LearningPolicy()
        self._learned = LearnedCache()

    def _in_force(self, alias: str, limits: AliasLimits) -> AliasLimits:
        return self._learned.limits(alias, limits, self.learning)

    @asynccontextmanager
    async def _statement(self) -> AsyncIterator[AsyncConnection]:
        """A pooled connection whose statements commit one by one."""
        async with self._autocommit.connect() as connection:
            yield connection

    async def _limits_of(self, session: rate_limits.Executor, alias: str) -> AliasLimits:
        limits = limits_for(self._limits, alias)
        if alias not in self._ready:
            await rate_limits.ensure_alias(session, alias, limits.max_concurrent)
            self._ready.add(alias)
        return limits

    async def acquire(self, alias: str, requests: int = 1, tokens: int = 0) -> Admission:
        async with self._statement() as connection:
            configured = await self._limits_of(connection, alias)
            limits = self._in_force(alias, configured)
            rates = (limits.requests, limits.tokens)
            found = await rate_limits.acquire(connection, alias, requests, tokens, rates)
        admission, learned = found
        self._learned.put(alias, learned, admission.at_s)
        return replace(admission, limited=rated(self._in_force(alias, configured)))

    async def cut(self, alias: str, granted_at: float) -> None:
        async with self._sessions() as session:
            limits = await self._limits_of(session, alias)
            state, now = await rate_limits.read_learned(session, alias)
            found = learning.cut(state, limits, granted_at, now, self.learning)
            if found is not None:
                await rate_limits.write_learned(session, alias, found)
            await session.commit()

    async def learn_limits(self, alias: str, rpm: int | None, tpm: int | None) -> None:
        async with self._sessions() as session:
            limits = await self._limits_of(session, alias)
            state, now = await rate_limits.read_learned(session, alias)
            found = learning.stated(state, rpm, tpm, now)
            if found is not None:
                requests = learning.learned_limits(limits, found, now, self.learning).requests
                floor = learning.repaced_tat(found, requests, now)
                await rate_limits.write_learned(session, alias, found, floor)
            await session.commit()

    async def refund(self, alias: str, tokens: int) -> None:
        async with self._statement() as connection:
            limits = self._in_force(alias, await self._limits_of(connection, alias))
            await rate_limits.refund(connection, alias, tokens, limits.tokens)

    async def acquire_slot(self, alias: str, owner: str, ttl_s: float) -> bool:
        await self._mark_alive()
        async with self._statement() as connection:
            limit = (await self._limits_of(connection, alias)).max_concurrent
            if limit is None:
                return True
            if await rate_limits.take_slot(connection, alias, owner, ttl_s, limit):
                return True
            if not await self._freed_dead(connection, alias):
                return False
            return await rate_limits.take_slot(connection, alias, owner, ttl_s, limit)

    async def _mark_alive(self) -> None:
        """Take this process's liveness lock before its first lease (once)."""
        if self._alive is None or self._marked:
            return
        async with self._marking:
            if not self._marked:
                await self._alive.acquire()
                self._marked = True

    async def _freed_dead(self, connection: AsyncConnection, alias: str) -> bool:
        """Whether slots of dead processes were freed (when a look is due)."""
        if self._alive is None or not self._dead_check.due(alias):
            return False
        return await rate_limits.free_dead_slots(connection, alias, SLOT_HOLDER_LOCK_CLASS) > 0

    async def renew_slots(self, alias: str, owners: Collection[str], ttl_s: float) -> set[str]:
        if self._alive is not None:
            # NOTE: the mark is taken again if the database restarted; meanwhile this
            # process looks dead to the others, and its renewals find what they freed.
            with contextlib.suppress(SQLAlchemyError, OSError):
                await self._alive.keep()
        async with self._statement() as connection:
            await self._limits_of(connection, alias)
            return await rate_limits.renew_slots(connection, alias, owners, ttl_s)

    async def release_slot(self, alias: str, owner: str) -> None:
        async with self._statement() as connection:
            await self._limits_of(connection, alias)
            await rate_limits.release_slot(connection, alias, owner)

    async def block(self, alias: str, seconds: float) -> None:
        async with self._statement() as connection:
            await self._limits_of(connection, alias)
            await rate_limits.block(connection, alias, max(seconds, 0.0))

    async def blocked_for(self, alias: str) -> float:
        async with self._statement() as connection:
            await self._limits_of(connection, alias)
            return await rate_limits.blocked_for(connection, alias)

    async def snapshot(self, alias: str) -> StoreSnapshot:
        configured = limits_for(self._limits, alias)
        async with self._sessions() as session:
            state = await rate_limits.read_state(session, alias)
        now, policy = state.now, self.learning
        limits = learning.learned_limits(configured, state.learned, now, policy)
        learned_rpm, learned_tpm = learning.learned_rates(configured, state.learned, now, policy)
        return StoreSnapshot(
            requests=budget_state(limits.requests, state.requests_tat, now, limits.rpm),
            tokens=budget_state(limits.tokens, state.tokens_tat, now, limits.tpm),
            max_concurrent=limits.max_concurrent,
            blocked_for_s=max(0.0, state.blocked_until - now),
            leases=leases_by_holder(state.owners),
            learned_rpm=learned_rpm,
            learned_tpm=learned_tpm,
        )

    async def aclose(self) -> None:
        """Drop this process's liveness lock (its slots are given back by then)."""
        if self._alive is not None:
            await self._alive.release()
            self._marked = False
