"""Leased slices of a shared budget: fewer store round trips per call (DESIGN §5).

:class:`SlicedRateStore` wraps a :class:`~app.engine.resources.shared.SharedRateStore` for one
process. Two things that would each cost a store round trip per call are taken in bulk:

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
- **Slot leases.** A concurrency lease the store granted is handed from a finished call to
  the next call of this process waiting for one, for ``hold_s`` after it was taken. Then, if
  the store's last word (``Admission.contended``, heard with every budget decision) said a
  process waits for a slot, it goes back to the store and, for a moment (up to ``poll_s``),
  this process asks for no new lease, so that the waiting processes can take it; if nobody
  waits, it is kept for another ``hold_s``, so a busy process alone on an alias takes no
  lease per hold. Renewals are one store operation for all of a process's leases of an
  alias (:meth:`SlicedRateStore.renew_slots`). A lease no local call takes within
  ``linger_s`` (two at most) of its release goes back then, or, while nobody waits, once it
  lay idle for a third of the lease time (it shows as held meanwhile). Leases keep their
  expiry: a process killed mid-call leaves them taken for at most the lease time.

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
import random
from collections.abc import Collection, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any

from app.engine.clock import Clock, MonotonicClock
from app.engine.resources.shared import (
    WANTED_S,
    Admission,
    AliasLimits,
    SharedRateStore,
    limits_for,
    rated,
)
from app.engine.resources.store_state import StoreSnapshot, lease_owner

DEFAULT_SLICE_S = 0.1
DEFAULT_LIFE_S = 0.5
DEFAULT_HOLD_S = 2.0
DEFAULT_LINGER_S = 0.05
DEFAULT_POLL_S = 0.02


@dataclass(frozen=True, slots=True)
class SliceSettings:
    """How much a process takes at once: ``slice_s`` seconds' worth of each rate (0 = no
    budget slices), kept ``life_s``; slot leases reused for ``hold_s`` (0 = never)."""

    slice_s: float = DEFAULT_SLICE_S
    life_s: float = DEFAULT_LIFE_S
    hold_s: float = DEFAULT_HOLD_S
    linger_s: float = DEFAULT_LINGER_S
    poll_s: float = DEFAULT_POLL_S

    def for_lease(self, ttl_s: float) -> SliceSettings:
        """Holds short against the lease: while calls run, every lease of the alias is renewed
        every ``ttl_s / 3`` (:meth:`SlicedRateStore.renew_slots`), and a lease held again
        once half ``ttl_s`` passed since its last renewal, so none goes unrenewed for over
        about ``ttl_s / 2``."""
        return SliceSettings(
            self.slice_s, self.life_s, min(self.hold_s, ttl_s / 20), self.linger_s, self.poll_s
        )


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
    busy: dict[str, _Pooled] = field(default_factory=dict)
    idle: list[_Pooled] = field(default_factory=list)
    yield_until: float = 0.0
    calm_until: float = 0.0  # the store last said nobody waits for a slot; trusted until then
    sweep: asyncio.TimerHandle | None = None  # the next look at the idle leases


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
        self.store_calls = 0
        self._limits = dict(limits)
        self._clock = clock or MonotonicClock()
        self._aliases: dict[str, _AliasSlices] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        # NOTE: a busy process decides at least every two slice lives (one in the background,
        # late when the store is slow); its word that nobody waits holds until the next one.
        self._calm_s = WANTED_S + 2 * self.settings.life_s

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
                self._background(self._renew_passes(alias, state))
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
        self.store_calls += 1
        admission = await self.store.acquire(alias, requests, tokens)
        calm = not admission.contended
        self._alias(alias).calm_until = self._clock.now() + self._calm_s if calm else 0.0
        return admission

    async def refund(self, alias: str, tokens: int) -> None:
        self.store_calls += 1
        await self.store.refund(alias, tokens)

    async def block(self, alias: str, seconds: float) -> None:
        self._drop(alias)
        self.store_calls += 1
        await self.store.block(alias, seconds)

    async def cut(self, alias: str, granted_at: float) -> None:
        # NOTE: the slice was taken at the rate the 429 proves too high: it is not spent on.
        self._drop(alias)
        self.store_calls += 1
        await self.store.cut(alias, granted_at)

    async def learn_limits(self, alias: str, rpm: int | None, tpm: int | None) -> None:
        self.store_calls += 1
        await self.store.learn_limits(alias, rpm, tpm)

    def _drop(self, alias: str) -> None:
        """Empty the alias's slice at once (its tokens stay spent: a pause or cut follows)."""
        state = self._alias(alias)
        state.requests, state.tokens, state.lapses_at, state.open_until = 0, 0, 0.0, 0.0

    async def blocked_for(self, alias: str) -> float:
        self.store_calls += 1
        return await self.store.blocked_for(alias)

    async def snapshot(self, alias: str) -> StoreSnapshot:
        return await self.store.snapshot(alias)

    # -- slot leases -------------------------------------------------------------------------

    async def acquire_slot(self, alias: str, owner: str, ttl_s: float) -> bool:
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

    def _reuse(self, alias: str, state: _AliasSlices, owner: str) -> bool:
        now = self._clock.now()
        while state.idle:
            pooled = state.idle.pop()
            self._hold_again_if_calm(alias, state, pooled, now)
            if pooled.fresh(now):
                state.busy[owner] = pooled
                return True
            self._background(self._give_back(alias, pooled))
        return False

    async def _new_slot(self, alias: str, state: _AliasSlices, owner: str, ttl_s: float) -> bool:
        now = self._clock.now()
        pooled = _Pooled(lease_owner(), now, self._hold_s(ttl_s), ttl_s, now)
        self.store_calls += 1
        if not await self.store.acquire_slot(alias, pooled.owner, ttl_s):
            state.calm_until = 0.0
            return False
        state.busy[owner] = pooled
        return True

    async def release_slot(self, alias: str, owner: str) -> None:
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
        self, alias: str, state: _AliasSlices, pooled: _Pooled, now: float
    ) -> None:
        """A lease whose hold ended while nobody waits for a slot is held again, renewed in
        the store when that is due."""
        if pooled.hold_s <= 0.0 or pooled.fresh(now) or now >= state.calm_until:
            return
        pooled.taken_at = now
        if pooled.renewal_due(now):
            pooled.renewed_at = now
            self._background(self._renew(alias, pooled))

    async def _renew(self, alias: str, pooled: _Pooled) -> None:
        self.store_calls += 1
        with contextlib.suppress(Exception):
            await self.store.acquire_slot(alias, pooled.owner, pooled.ttl_s)

    def _offer(self, alias: str, state: _AliasSlices, pooled: _Pooled) -> None:
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
            self._background(self._give_back(alias, pooled))
        state.sweep = None
        if state.idle:
            state.sweep = loop.call_later(self.settings.linger_s, self._sweep, alias)

    def _background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

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
        await asyncio.gather(*self._tasks, return_exceptions=True)
