"""Admission through a :class:`~app.engine.resources.shared.SharedRateStore` (DESIGN §5).

When a :class:`~app.engine.resources.manager.ResourceManager` is given a store, each call of an
endpoint, once its local gate let it go, also takes a concurrency lease from the store (renewed
while the call runs) and its request and token budget; afterwards it gives the lease back, books
the real token usage and shares what the provider said with every process using the store: a
429's ``Retry-After`` and rate cut, the limits its headers state
(:mod:`app.engine.resources.learning`).
A lease's owner id names its process (``<host>-<pid>:<call>``, see
:func:`~app.engine.resources.store_state.lease_owner`), so the store shows who holds the slots.

>>> import asyncio
>>> from app.engine.resources.shared import AliasLimits, InMemoryRateStore
>>> store = InMemoryRateStore({"fast": AliasLimits(max_concurrent=1)})
>>> admission = SharedAdmission(store, "fast", AliasLimits(max_concurrent=1))
>>> async def once():
...     lease = await admission.enter(tokens=10)
...     await admission.leave(lease)
...     return await store.acquire_slot("fast", "other", ttl_s=1)
>>> asyncio.run(once())
True
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from app.engine.resources.shared import AliasLimits, SharedRateStore
from app.engine.resources.slices import SlicedRateStore
from app.engine.resources.store_state import lease_owner

# NOTE: the store notifies nobody (other processes release its slots) and a refused slot
# carries no wait hint: a short poll keeps the wait close to the release.
SLOT_POLL_S = 0.02
LEASE_TTL_S = 30.0
# NOTE: stated limits are written again this often even when unchanged (a read and no write
# when the store has them), so a store that lost them (Redis expiry, a restart) gets them back.
RESTATE_S = 30.0


@dataclass(slots=True)
class SharedLease:
    """One call's share of the store: its slot owner id, its token estimate and its outcome."""

    owner: str
    tokens: int
    held: bool = False
    used_tokens: int | None = None
    retry_after_s: float | None = None
    granted_at: float = 0.0
    rate_limited: bool = False
    stated: tuple[int | None, int | None] | None = None


class SharedAdmission:
    """The store side of one alias's admission: slot lease, budgets, refund and 429 pauses."""

    def __init__(
        self, store: SharedRateStore, alias: str, limits: AliasLimits, ttl_s: float = LEASE_TTL_S
    ) -> None:
        self.store = store
        self.alias = alias
        self._slots = limits.max_concurrent is not None
        self._tokens = limits.tpm is not None
        self._ttl_s = ttl_s
        self._stated: tuple[int | None, int | None] | None = None
        self._stated_at = 0.0
        self._live: set[str] = set()
        self._keeper: asyncio.Task[None] | None = None
        self._pool = store if isinstance(store, SlicedRateStore) else None

    async def enter(self, tokens: int) -> SharedLease:
        """Wait for a slot and for the budget of a call needing ``tokens``."""
        lease = SharedLease(owner=lease_owner(), tokens=tokens)
        if self._slots:
            await self._take_slot(lease.owner)
            self._keep(lease)
        try:
            lease.granted_at = await self._take_budget(tokens)
        except BaseException:
            await self._drop_slot(lease)
            raise
        return lease

    async def leave(self, lease: SharedLease) -> None:
        """Give the slot back, book the real usage, share a 429's pause and cut and the
        limits the provider stated."""
        await self._drop_slot(lease)
        if refund := self._refund(lease):
            await self.store.refund(self.alias, refund)
        if pause := _pause(lease):
            await self.store.block(self.alias, pause)
        if lease.rate_limited:
            await self.store.cut(self.alias, lease.granted_at)
        if lease.stated is not None and self._stated_due(lease.stated):
            await self._share_stated(lease.stated)

    def leave_now(self, lease: SharedLease) -> Coroutine[Any, Any, None] | None:
        """:meth:`leave`, done at once when it needs no store: the slot passes to this
        process's next call and there is nothing to book (``None``); else the coroutine that
        does it (so that the hot path spends no task on a leave the store takes no part in)."""
        self._pass_on(lease)
        if lease.held or self._books(lease):
            return self.leave(lease)
        return None

    def _pass_on(self, lease: SharedLease) -> None:
        """Hand the call's slot to this process's next call, if its pool may keep it."""
        if not lease.held or self._pool is None:
            return
        if self._pool.release_pooled(self.alias, lease.owner):
            lease.held = False
            self._live.discard(lease.owner)

    def _books(self, lease: SharedLease) -> bool:
        """Whether leaving tells the store more than that the slot is free."""
        told = self._refund(lease) or _pause(lease) or lease.rate_limited
        return bool(told) or self._stated_due(lease.stated)

    def _refund(self, lease: SharedLease) -> int:
        """The tokens the call's estimate took beyond its real usage (negative: too few)."""
        if lease.used_tokens is None or not self._tokens:
            return 0
        return lease.tokens - lease.used_tokens

    def _stated_due(self, stated: tuple[int | None, int | None] | None) -> bool:
        """Whether the provider's stated limits differ from the last ones written, or were
        written more than ``RESTATE_S`` ago (the store may have dropped them since)."""
        if stated is None or not any(stated):
            return False
        return stated != self._stated or time.monotonic() >= self._stated_at + RESTATE_S

    async def _share_stated(self, stated: tuple[int | None, int | None]) -> None:
        self._stated, self._stated_at = stated, time.monotonic()
        await self.store.learn_limits(self.alias, *stated)

    async def _take_slot(self, owner: str) -> None:
        while not await self.store.acquire_slot(self.alias, owner, self._ttl_s):  # noqa: ASYNC110
            await asyncio.sleep(SLOT_POLL_S)

    async def _take_budget(self, tokens: int) -> float:
        """Wait for the budget; returns the store time of the grant."""
        # NOTE: asked even without rpm/tpm: a shared 429 pause is only seen through acquire.
        while not (admission := await self.store.acquire(self.alias, 1, tokens)).granted:  # noqa: ASYNC110
            await asyncio.sleep(admission.retry_after_s)
        return admission.at_s

    def _keep(self, lease: SharedLease) -> None:
        """Renew the lease while the call runs: one task renews every live lease of the alias
        (a task per call would cost more than the rest of the admission)."""
        lease.held = True
        self._live.add(lease.owner)
        if self._keeper is None or self._keeper.done():
            self._keeper = asyncio.get_running_loop().create_task(self._renew_live())

    async def _renew_live(self) -> None:
        """Every third of the lease time, renew the live leases in one store operation;
        stops when none is left."""
        while self._live:
            await asyncio.sleep(self._ttl_s / 3)
            with contextlib.suppress(Exception):
                lapsed = await self.store.renew_slots(self.alias, set(self._live), self._ttl_s)
                for owner in lapsed:
                    await self._take_again(owner)

    async def _take_again(self, owner: str) -> None:
        """A lease that lapsed while its call runs (the store was out of reach) is taken
        again if a slot is free."""
        if owner not in self._live:
            return
        await self.store.acquire_slot(self.alias, owner, self._ttl_s)
        if owner not in self._live:  # NOTE: its call ended meanwhile: give it back again
            await self.store.release_slot(self.alias, owner)

    async def _drop_slot(self, lease: SharedLease) -> None:
        if not lease.held:
            return
        lease.held = False
        self._live.discard(lease.owner)
        await self.store.release_slot(self.alias, lease.owner)


def _pause(lease: SharedLease) -> float:
    """The pause a 429's ``Retry-After`` asks of every process (0: none)."""
    return max(lease.retry_after_s or 0.0, 0.0)
