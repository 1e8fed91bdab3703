"""Slot leases passed from call to call of one process (DESIGN §5).

:class:`SlotPool` keeps one process's concurrency leases of a
:class:`~app.engine.resources.shared.SharedRateStore`, for
:class:`~app.engine.resources.slices.SlicedRateStore`. A lease the store granted is handed
from a finished call to the next call of this process waiting for one, for ``hold_s`` after
it was taken. Then, if the store's last word (``Admission.contended``, heard with every
budget decision: :meth:`SlotPool.heard`) said a process waits for a slot, it goes back to the
store and, for a moment (up to ``poll_s``), this process asks for no new lease, so that the
waiting processes can take it; if nobody waits, it is kept for another ``hold_s``, so a busy
process alone on an alias takes no lease per hold. Renewals are one store operation for all
of a process's leases of an alias (:meth:`SlotPool.renew_slots`). A lease no local call takes
within ``linger_s`` (two at most) of its release goes back then, or, while nobody waits, once
it lay idle for a third of the lease time (it shows as held meanwhile). Leases keep their
expiry: a process killed mid-call leaves them taken for at most the lease time.

>>> import asyncio
>>> from app.engine.resources.shared import AliasLimits, InMemoryRateStore
>>> pool = SlotPool(InMemoryRateStore({"one": AliasLimits(max_concurrent=1)}), SliceSettings())
>>> async def two_calls():
...     assert await pool.acquire_slot("one", "call-1", ttl_s=30.0)
...     await pool.release_slot("one", "call-1")
...     return await pool.acquire_slot("one", "call-2", ttl_s=30.0), pool.store_calls
>>> asyncio.run(two_calls())
(True, 1)
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from app.engine.background import TaskSet
from app.engine.clock import Clock, MonotonicClock
from app.engine.resources.shared import WANTED_S, SharedRateStore
from app.engine.resources.slice_settings import SliceSettings
from app.engine.resources.store_state import lease_owner


@dataclass(slots=True)
class _Pooled:
    """A lease the store granted (``owner`` in the store) for ``ttl_s``, its hold begun at
    ``taken_at``, last renewed at ``renewed_at``."""

    owner: str
    taken_at: float
    hold_s: float
    ttl_s: float
    renewed_at: float
    idle_since: float = 0.0
    offered_at: float = 0.0  # the loop time it was offered (its linger is loop time)

    def idle_keep_until(self) -> float:
        """While nobody waits for a slot, an idle lease is kept this long (a third of the
        lease time), so that a lull in the process's calls costs no lease given back."""
        return self.idle_since + self.ttl_s / 3

    def fresh(self, now: float) -> bool:
        """Whether the lease may still pass to another call of this process."""
        return now - self.taken_at < self.hold_s

    def renewal_due(self, now: float) -> bool:
        """Whether half the lease time has passed since its last renewal (the renewals of
        running calls come every third of it: this one is the fallback)."""
        return now - self.renewed_at >= self.ttl_s / 2


def _store_owner(pooled: Mapping[str, _Pooled], owner: str) -> str:
    """The store's owner of the lease of the call ``owner``."""
    lease = pooled.get(owner)
    return owner if lease is None else lease.owner


@dataclass(slots=True)
class _AliasSlots:
    busy: dict[str, _Pooled] = field(default_factory=dict)
    idle: list[_Pooled] = field(default_factory=list)
    yield_until: float = 0.0
    calm_until: float = 0.0  # the store last said nobody waits for a slot; trusted until then
    sweep: asyncio.TimerHandle | None = None  # the next look at the idle leases


class SlotPool:
    """One process's concurrency leases of ``store``, passed from call to call (see the
    module). ``store_calls`` counts the operations sent to ``store``."""

    def __init__(
        self, store: SharedRateStore, settings: SliceSettings, clock: Clock | None = None
    ) -> None:
        self.store = store
        self.settings = settings
        self.store_calls = 0
        self._clock = clock or MonotonicClock()
        self._aliases: dict[str, _AliasSlots] = {}
        self._tasks = TaskSet()
        # NOTE: a busy process decides at least every two slice lives (one in the background,
        # late when the store is slow); its word that nobody waits holds until the next one.
        self._calm_s = WANTED_S + 2 * settings.life_s

    def _alias(self, alias: str) -> _AliasSlots:
        found = self._aliases.get(alias)
        if found is None:
            found = self._aliases[alias] = _AliasSlots()
        return found

    def heard(self, alias: str, contended: bool) -> None:
        """The store's word, with a budget decision, on whether a process waits for a slot."""
        now = self._clock.now()
        self._alias(alias).calm_until = 0.0 if contended else now + self._calm_s

    async def acquire_slot(self, alias: str, owner: str, ttl_s: float) -> bool:
        """A lease for the call ``owner``: one a finished call of this process passed on,
        else the store's (False: refused); for a call that holds one, its renewal."""
        state = self._alias(alias)
        held = state.busy.get(owner)
        if held is not None:
            self.store_calls += 1
            renewed = await self.store.acquire_slot(alias, held.owner, ttl_s)
            held.renewed_at = self._clock.now() if renewed else held.renewed_at
            return renewed
        if self._hold_s(ttl_s) <= 0.0:
            return await self._new_slot(alias, state, owner, ttl_s)
        if self._reuse(alias, state, owner):
            return True
        # NOTE: a call that just finished and must tell the store more gives its lease back
        # in a task of its own, which runs after this one: one turn of the loop lets it
        # offer the lease here first.
        await asyncio.sleep(0)
        if self._reuse(alias, state, owner):
            return True
        if self._clock.now() < state.yield_until:
            return False
        return await self._new_slot(alias, state, owner, ttl_s)

    async def renew_slots(self, alias: str, owners: Collection[str], ttl_s: float) -> set[str]:
        """Renew the leases behind the calls ``owners`` and every lease lying idle, in one
        store operation; returns the calls whose lease lapsed."""
        state = self._alias(alias)
        pooled = {owner: state.busy[owner] for owner in owners if owner in state.busy}
        leases = {lease.owner: lease for lease in [*pooled.values(), *state.idle]}
        unpooled = [owner for owner in owners if owner not in pooled]
        self.store_calls += 1
        missing = await self.store.renew_slots(alias, [*leases, *unpooled], ttl_s)
        now = self._clock.now()
        for owner, lease in leases.items():
            lease.renewed_at = lease.renewed_at if owner in missing else now
        return {owner for owner in owners if _store_owner(pooled, owner) in missing}

    def _hold_s(self, ttl_s: float) -> float:
        return self.settings.for_lease(ttl_s).hold_s

    def _reuse(self, alias: str, state: _AliasSlots, owner: str) -> bool:
        now = self._clock.now()
        while state.idle:
            pooled = state.idle.pop()
            self._hold_again_if_calm(alias, state, pooled, now)
            if pooled.fresh(now):
                state.busy[owner] = pooled
                return True
            self._tasks.spawn(self._give_back(alias, pooled))
        return False

    async def _new_slot(self, alias: str, state: _AliasSlots, owner: str, ttl_s: float) -> bool:
        now = self._clock.now()
        pooled = _Pooled(lease_owner(), now, self._hold_s(ttl_s), ttl_s, now)
        self.store_calls += 1
        if not await self.store.acquire_slot(alias, pooled.owner, ttl_s):
            state.calm_until = 0.0
            return False
        state.busy[owner] = pooled
        return True

    async def release_slot(self, alias: str, owner: str) -> None:
        """The call's lease passes to this process's next call while its hold lasts, else
        goes back to the store."""
        if self.release_pooled(alias, owner):
            return
        state = self._alias(alias)
        pooled = state.busy.pop(owner, None)
        if pooled is None:
            self.store_calls += 1
            await self.store.release_slot(alias, owner)
            return
        if pooled.hold_s > 0.0:
            # NOTE: a lease held its time: for a moment, let waiting processes take it.
            state.yield_until = self._clock.now() + self.settings.poll_s * random.random()
        await self._give_back(alias, pooled)

    def release_pooled(self, alias: str, owner: str) -> bool:
        """Pass the call's lease to this process's next call, without the store, if it may
        still pass on (True); else :meth:`release_slot` gives it back to the store."""
        state = self._alias(alias)
        pooled = state.busy.get(owner)
        if pooled is None:
            return False
        now = self._clock.now()
        self._hold_again_if_calm(alias, state, pooled, now)
        if not pooled.fresh(now):
            return False
        # NOTE: offered at once, even when held again (its renewal is in the background):
        # a call of this process that found no lease to reuse would ask the store, be
        # refused, and so say that a process waits.
        del state.busy[owner]
        self._offer(alias, state, pooled)
        return True

    def _hold_again_if_calm(
        self, alias: str, state: _AliasSlots, pooled: _Pooled, now: float
    ) -> None:
        """A lease whose hold ended while nobody waits for a slot is held again, renewed in
        the store when that is due."""
        if pooled.hold_s <= 0.0 or pooled.fresh(now) or now >= state.calm_until:
            return
        pooled.taken_at = now
        if pooled.renewal_due(now):
            pooled.renewed_at = now
            self._tasks.spawn(self._renew(alias, pooled))

    async def _renew(self, alias: str, pooled: _Pooled) -> None:
        self.store_calls += 1
        with contextlib.suppress(Exception):
            await self.store.acquire_slot(alias, pooled.owner, pooled.ttl_s)

    def _offer(self, alias: str, state: _AliasSlots, pooled: _Pooled) -> None:
        """Keep the lease for the next call of this process; one timer per alias looks at
        the idle leases every ``linger_s`` (a timer per lease would cost more than the rest
        of the release)."""
        loop = asyncio.get_running_loop()
        pooled.idle_since, pooled.offered_at = self._clock.now(), loop.time()
        state.idle.append(pooled)
        if state.sweep is None:
            state.sweep = loop.call_later(self.settings.linger_s, self._sweep, alias)

    def _sweep(self, alias: str) -> None:
        """A lease no call took within ``linger_s`` (two at most) goes back, unless nobody
        waits for a slot; then it lies idle, held again hold after hold, for up to a third
        of the lease time (a lull in this process's calls costs no lease given back and
        taken again)."""
        state = self._alias(alias)
        loop = asyncio.get_running_loop()
        now, lingered = self._clock.now(), loop.time() - self.settings.linger_s
        for pooled in [lease for lease in state.idle if lease.offered_at <= lingered]:
            if now < state.calm_until and now < pooled.idle_keep_until():
                self._hold_again_if_calm(alias, state, pooled, now)
                continue
            state.idle.remove(pooled)
            self._tasks.spawn(self._give_back(alias, pooled))
        state.sweep = None
        if state.idle:
            state.sweep = loop.call_later(self.settings.linger_s, self._sweep, alias)

    async def _give_back(self, alias: str, pooled: _Pooled) -> None:
        self.store_calls += 1
        with contextlib.suppress(Exception):
            await self.store.release_slot(alias, pooled.owner)

    async def release_idle(self) -> None:
        """Give every lease no call holds back to the store now (the process is closing)."""
        for alias, state in self._aliases.items():
            idle, state.idle = state.idle, []
            if state.sweep is not None:
                state.sweep.cancel()
                state.sweep = None
            for pooled in idle:
                await self._give_back(alias, pooled)
        await self._tasks.drain()
