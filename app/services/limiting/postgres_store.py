"""The shared rate store on Postgres: no server beyond the database the service already uses.

Each operation is one short transaction of one decision statement (see
:mod:`app.db.repositories.rate_limits`)::

    store = PostgresRateStore(session_factory(engine), limits_of(resource_config))
    admission = await store.acquire("fast", tokens=1200)
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.repositories import rate_limits
from app.engine.resources.shared import Admission, AliasLimits, limits_for
from app.engine.resources.store_state import StoreSnapshot, budget_state, leases_by_holder


class PostgresRateStore:
    """:class:`~app.engine.resources.shared.SharedRateStore` on Postgres."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], limits: Mapping[str, AliasLimits]
    ) -> None:
        self._sessions = sessions
        self._limits = dict(limits)
        self._ready: set[str] = set()

    async def _limits_of(self, session: AsyncSession, alias: str) -> AliasLimits:
        limits = limits_for(self._limits, alias)
        if alias not in self._ready:
            await rate_limits.ensure_alias(session, alias, limits.max_concurrent)
            self._ready.add(alias)
        return limits

    async def acquire(self, alias: str, requests: int = 1, tokens: int = 0) -> Admission:
        async with self._sessions() as session:
            limits = await self._limits_of(session, alias)
            rates = (limits.requests, limits.tokens)
            admission = await rate_limits.acquire(session, alias, requests, tokens, rates)
            await session.commit()
        return admission

    async def refund(self, alias: str, tokens: int) -> None:
        async with self._sessions() as session:
            limits = await self._limits_of(session, alias)
            await rate_limits.refund(session, alias, tokens, limits.tokens)
            await session.commit()

    async def acquire_slot(self, alias: str, owner: str, ttl_s: float) -> bool:
        async with self._sessions() as session:
            limit = (await self._limits_of(session, alias)).max_concurrent
            taken = limit is None or await rate_limits.take_slot(
                session, alias, owner, ttl_s, limit
            )
            await session.commit()
        return taken

    async def release_slot(self, alias: str, owner: str) -> None:
        async with self._sessions() as session:
            await self._limits_of(session, alias)
            await rate_limits.release_slot(session, alias, owner)
            await session.commit()

    async def block(self, alias: str, seconds: float) -> None:
        async with self._sessions() as session:
            await self._limits_of(session, alias)
            await rate_limits.block(session, alias, max(seconds, 0.0))
            await session.commit()

    async def blocked_for(self, alias: str) -> float:
        async with self._sessions() as session:
            await self._limits_of(session, alias)
            found = await rate_limits.blocked_for(session, alias)
            await session.commit()
        return found

    async def snapshot(self, alias: str) -> StoreSnapshot:
        limits = limits_for(self._limits, alias)
        async with self._sessions() as session:
            state = await rate_limits.read_state(session, alias)
        now = state.now
        return StoreSnapshot(
            requests=budget_state(limits.requests, state.requests_tat, now, limits.rpm),
            tokens=budget_state(limits.tokens, state.tokens_tat, now, limits.tpm),
            max_concurrent=limits.max_concurrent,
            blocked_for_s=max(0.0, state.blocked_until - now),
            leases=leases_by_holder(state.owners),
        )
