"""Leased slices of a shared budget: fewer store round trips per call (DESIGN §5).

:class:`SlicedRateStore` wraps a :class:`~app.engine.resources.shared.SharedRateStore` for one
process. Three things that would each cost a store round trip per call are taken in bulk:

- **Budget slices.** An alias whose rate gives more than one request per ``slice_s`` takes
  ``floor(rpm / 60 * slice_s)`` requests (and as many seconds' worth of tokens, at least the
  call's own) in one ``acquire`` and spends them locally. A slice lapses ``life_s`` after it
  was taken: its unspent tokens are given back, its unspent requests are lost (at most one
  slice per process). A 429 pause or rate cut set by this process empties its slice at once;
  one set by another process is seen at the next slice, within ``life_s``. A slice is one
  store decision: it counts in the store's learned state as its requests
  (:mod:`app.engine.resources.learning`), and its calls are granted at the slice's store time
  (what a 429's cut is judged by). Slices are sized by the configured rate, so a learned
  rate below it is still kept by the store's GCRA, only in bursts of up to a slice.
- **Unmetered passes.** An alias configured with no rate (only ``max_concurrent``, or
  nothing) needs the store only for a 429 pause or a rate learned from 429s. While the
  store's last grant said neither is in force (``Admission.limited`` False), calls pass
  locally for ``life_s``, and for one more ``life_s`` while a decision in the background asks
  again (a call never waits for a store that is slow to answer, a SQLite file's write lock
  say); their count goes with this process's next store decision, so the store's grants of
  the last minute (what a 429 cuts from) miss none of them. A pause or learned rate set by
  another process is seen within ``2 life_s``.
- **Slot leases**, passed from call to call of this process by its
  :class:`~app.engine.resources.slot_pool.SlotPool` (see there).

The overshoot bound: each process holds at most one slice, so across ``N`` processes the
provider may see up to ``N x slice`` requests (and tokens) beyond what the store's GCRA
allows in a window, that is ``N x slice_s`` seconds' worth of the rate. Aliases under one
request per ``slice_s`` are not sliced at all (every call is one store decision, as without
this wrapper).

>>> import asyncio
>>> from app.engine.resources.shared import AliasLimits, InMemoryRateStore
>>> limits = {"fast": AliasLimits(rpm=60_000)}
>>> sliced = SlicedRateStore(InMemoryRateStore(limits), limits, SliceSettings(slice_s=0.05))
>>> async def three():
...     return [(await sliced.acquire("fast")).granted for _ in range(3)]
>>> asyncio.run(three()), sliced.store_calls
([True, True, True], 1)
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from app.engine.background import TaskSet
from app.engine.clock import Clock, MonotonicClock
from app.engine.resources.shared import (
    Admission,
    AliasLimits,
    SharedRateStore,
    limits_for,
    rated,
)
from app.engine.resources.slice_settings import SliceSettings
from app.engine.resources.slot_pool import SlotPool
from app.engine.resources.store_state import StoreSnapshot


@dataclass(slots=True)
class _AliasSlices:
    limits: AliasLimits
    requests: int = 0
    tokens: int = 0
    lapses_at: float = 0.0
    granted_at: float = 0.0  # the store time of the slice's grant (its calls' grant time)
    taking: asyncio.Lock = field(default_factory=asyncio.Lock)
    open_until: float = 0.0  # unmetered passes until then (the store saw no rate in force)
    owed: int = 0  # requests passed unmetered, not yet counted by the store
    renewing: bool = False  # a background decision renews the passes


class SlicedRateStore:
    """A :class:`~app.engine.resources.shared.SharedRateStore` that takes budget in slices and
    reuses slot leases (see the module). ``store_calls`` counts the operations sent to
    ``store`` (each one round trip)."""

    def __init__(
        self,
        store: SharedRateStore,
        limits: Mapping[str, AliasLimits],
        settings: SliceSettings | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.store = store
        self.settings = settings or SliceSettings()
        self._clock = clock or MonotonicClock()
        self.slots = SlotPool(store, self.settings, self._clock)
        self._budget_calls = 0
        self._limits = dict(limits)
        self._aliases: dict[str, _AliasSlices] = {}
        self._tasks = TaskSet()

    @property
    def store_calls(self) -> int:
        """The operations sent to the store so far, for budgets and slot leases."""
        return self._budget_calls + self.slots.store_calls

    def _alias(self, alias: str) -> _AliasSlices:
        found = self._aliases.get(alias)
        if found is None:
            found = self._aliases[alias] = _AliasSlices(limits_for(self._limits, alias))
        return found

    def slice_of(self, alias: str, tokens: int) -> tuple[int, int]:
        """The requests and tokens one slice takes for a call needing ``tokens``."""
        limits = limits_for(self._limits, alias)
        span = self.settings.slice_s / 60.0
        requests = 1 if limits.rpm is None else max(1, math.floor(limits.rpm * span))
        extra = 0 if limits.tpm is None else math.floor(limits.tpm * span)
        return requests, max(tokens, extra) if limits.tpm is not None else tokens

    # -- budget ------------------------------------------------------------------------------

    async def acquire(self, alias: str, requests: int = 1, tokens: int = 0) -> Admission:
        state = self._alias(alias)
        if not rated(state.limits) and self.settings.slice_s > 0:
            return await self._unmetered(alias, state, requests)
        take = self.slice_of(alias, tokens)
        if take == (requests, tokens) or state.limits.rpm is None:
            return await self._store_acquire(alias, requests, tokens)
        if state.limits.tpm is None:
            tokens, take = 0, (take[0], 0)  # NOTE: an unlimited budget is not counted
        if self._spend(state, requests, tokens):
            return Admission(granted=True, at_s=state.granted_at)
        async with state.taking:
            if self._spend(state, requests, tokens):
                return Admission(granted=True, at_s=state.granted_at)
            return await self._take_slice(alias, state, take, (requests, tokens))

    async def _take_slice(
        self, alias: str, state: _AliasSlices, take: tuple[int, int], need: tuple[int, int]
    ) -> Admission:
        """A new slice (topping up what is left of a fresh one), and the call's share of it."""
        if self._clock.now() >= state.lapses_at:
            await self._lapse(alias, state)
        requests = max(need[0], take[0] - state.requests)
        tokens = max(need[1] - state.tokens, take[1] - state.tokens, 0)
        admission = await self._store_acquire(alias, requests, tokens)
        if admission.granted:
            state.requests += requests
            state.tokens += tokens
            state.lapses_at = self._clock.now() + self.settings.life_s
            state.granted_at = admission.at_s
            self._spend(state, *need)
        return admission

    async def _unmetered(self, alias: str, state: _AliasSlices, requests: int) -> Admission:
        """A pass while the store saw no rate in force; for one more ``life_s`` a pass too,
        while a decision in the background renews the passes (so calls never wait for it);
        else a store decision counting the passes owed (refused: debits nothing, they stay
        owed)."""
        if self._pass(state, requests, grace_s=0.0):
            return Admission(granted=True, at_s=state.granted_at, limited=False)
        if self._pass(state, requests, grace_s=self.settings.life_s):
            if not state.renewing:
                state.renewing = True
                self._tasks.spawn(self._renew_passes(alias, state))
            return Admission(granted=True, at_s=state.granted_at, limited=False)
        async with state.taking:
            if self._pass(state, requests, grace_s=0.0):
                return Admission(granted=True, at_s=state.granted_at, limited=False)
            return await self._decide_passes(alias, state, requests)

    async def _renew_passes(self, alias: str, state: _AliasSlices) -> None:
        try:
            async with state.taking:
                if self._clock.now() >= state.open_until and state.owed:
                    with contextlib.suppress(Exception):
                        await self._decide_passes(alias, state, 0)
        finally:
            state.renewing = False

    async def _decide_passes(self, alias: str, state: _AliasSlices, requests: int) -> Admission:
        """One store decision for ``requests`` and the passes owed; while it says no rate is
        in force, calls pass for ``life_s`` more, else each asks the store."""
        owed, state.owed = state.owed, 0
        admission = await self._store_acquire(alias, requests + owed, 0)
        if not admission.granted:
            state.owed += owed
        if admission.granted and not admission.limited:
            state.open_until = self._clock.now() + self.settings.life_s
            state.granted_at = admission.at_s
        else:
            state.open_until = 0.0
        return admission

    def _pass(self, state: _AliasSlices, requests: int, grace_s: float) -> bool:
        if self._clock.now() >= state.open_until + grace_s:
            return False
        state.owed += requests
        return True

    def _spend(self, state: _AliasSlices, requests: int, tokens: int) -> bool:
        fresh = self._clock.now() < state.lapses_at
        if not fresh or state.requests < requests or state.tokens < tokens:
            return False
        state.requests -= requests
        state.tokens -= tokens
        return True

    async def _lapse(self, alias: str, state: _AliasSlices) -> None:
        """Drop what is left of the slice; its tokens go back to the store."""
        left, state.requests, state.tokens, state.lapses_at = state.tokens, 0, 0, 0.0
        if left > 0 and state.limits.tpm is not None:
            await self.refund(alias, left)

    async def _store_acquire(self, alias: str, requests: int, tokens: int) -> Admission:
        self._budget_calls += 1
        admission = await self.store.acquire(alias, requests, tokens)
        self.slots.heard(alias, admission.contended)
        return admission

    async def refund(self, alias: str, tokens: int) -> None:
        self._budget_calls += 1
        await self.store.refund(alias, tokens)

    async def block(self, alias: str, seconds: float) -> None:
        self._drop(alias)
        self._budget_calls += 1
        await self.store.block(alias, seconds)

    async def cut(self, alias: str, granted_at: float) -> None:
        # NOTE: the slice was taken at the rate the 429 proves too high: it is not spent on.
        self._drop(alias)
        self._budget_calls += 1
        await self.store.cut(alias, granted_at)

    async def learn_limits(self, alias: str, rpm: int | None, tpm: int | None) -> None:
        self._budget_calls += 1
        await self.store.learn_limits(alias, rpm, tpm)

    def _drop(self, alias: str) -> None:
        """Empty the alias's slice at once (its tokens stay spent: a pause or cut follows)."""
        state = self._alias(alias)
        state.requests, state.tokens, state.lapses_at, state.open_until = 0, 0, 0.0, 0.0

    async def blocked_for(self, alias: str) -> float:
        self._budget_calls += 1
        return await self.store.blocked_for(alias)

    async def snapshot(self, alias: str) -> StoreSnapshot:
        return await self.store.snapshot(alias)

    # -- slot leases: the pool's ---------------------------------------------------------------

    async def acquire_slot(self, alias: str, owner: str, ttl_s: float) -> bool:
        return await self.slots.acquire_slot(alias, owner, ttl_s)

    async def renew_slots(self, alias: str, owners: Collection[str], ttl_s: float) -> set[str]:
        return await self.slots.renew_slots(alias, owners, ttl_s)

    async def release_slot(self, alias: str, owner: str) -> None:
        await self.slots.release_slot(alias, owner)

    def release_pooled(self, alias: str, owner: str) -> bool:
        """See :meth:`SlotPool.release_pooled`."""
        return self.slots.release_pooled(alias, owner)

    async def release_idle(self) -> None:
        """Give every lease no call holds back to the store now (the process is closing)."""
        await self.slots.release_idle()
        await self._tasks.drain()
