"""The async side of rate limiting: one gate per endpoint alias, shared by the whole process.

A gate hands out :class:`Permit` objects: a concurrency slot plus a start recorded in the
endpoint's :class:`~app.engine.resources.limiter.RateState`. Waiters are served in the order of a
:class:`~app.engine.resources.fairness.FairQueue`: lowest priority value first (aged, so that none
starves), then fair shares between tenants and between their jobs (:class:`Flow`). Nothing
polls: a waiter is woken by :meth:`EndpointGate.release` or by the single timer set for the
moment the head waiter's rate budget is available.

>>> import asyncio
>>> from app.engine.resources.limiter import RateState
>>> async def call_once(gate: EndpointGate) -> int:
...     permit = await gate.acquire(tokens=100)
...     try:
...         return gate.in_flight
...     finally:
...         gate.release(permit)
>>> asyncio.run(call_once(EndpointGate(max_concurrent=4, rate=RateState(rpm=600, tpm=None, now=0))))
1
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from app.engine.clock import Clock, MonotonicClock
from app.engine.errors import ConfigError
from app.engine.llm import RateLimitInfo
from app.engine.resources.fairness import AGING_S, NO_FLOW, FairQueue, Flow
from app.engine.resources.limiter import RateState
from app.engine.resources.sharing import SharedLease

_MONOTONIC = MonotonicClock()


@dataclass(slots=True)
class Permit:
    """The right to make one call: its token estimate, AIMD epoch and start time (clock seconds)."""

    tokens: int
    epoch: int
    started_at: float
    released: bool = field(default=False, compare=False)
    shared: SharedLease | None = field(default=None, compare=False)
    flow: Flow = field(default=NO_FLOW, compare=False)


@dataclass(slots=True)
class GateStats:
    """Counters for metrics: permits granted, how many had to wait and why, and total wait."""

    acquired: int = 0
    waited_for_rate: int = 0
    waited_for_slot: int = 0
    total_wait_s: float = 0.0


@dataclass(slots=True, eq=False)
class _Waiter:
    tokens: int
    future: asyncio.Future[Permit]
    enqueued_at: float
    for_slot: bool
    for_rate: bool
    flow: Flow


class EndpointGate:
    """Concurrency cap plus rate budget for one endpoint alias, priority-ordered.

    ``acquire`` waits for a free slot (at most ``max_concurrent`` permits in flight) and for the
    rate budget; ``release`` gives the slot back. Report outcomes through the gate (not the
    :class:`RateState` directly) so that waiters see the new budget at once::

        permit = await gate.acquire(estimated_tokens, priority)
        try:
            response = await client.complete(request)
        except RateLimitedError as exc:
            gate.on_rate_limited(permit, exc.retry_after)
            raise
        else:
            gate.settle(permit, response.input_tokens + response.output_tokens)
            gate.on_success(response.rate_limit)
        finally:
            gate.release(permit)

    The gate is not thread-safe: use it from one event loop at a time.
    """

    def __init__(
        self,
        *,
        max_concurrent: int,
        rate: RateState,
        clock: Clock = _MONOTONIC,
        aging_s: float = AGING_S,
    ) -> None:
        if max_concurrent < 1:
            raise ConfigError(f"max_concurrent must be at least 1, got {max_concurrent}")
        self.max_concurrent = max_concurrent
        self.rate = rate
        self.stats = GateStats()
        self._clock = clock
        self._in_flight = 0
        self._waiting = 0
        self._queue: FairQueue[_Waiter] = FairQueue(aging_s=aging_s, alive=_waits)
        self._timer: asyncio.TimerHandle | None = None
        self._timer_loop: asyncio.AbstractEventLoop | None = None
        self._timer_due = 0.0

    @property
    def in_flight(self) -> int:
        """Permits granted and not yet released."""
        return self._in_flight

    @property
    def waiting(self) -> int:
        """Callers blocked in :meth:`acquire`."""
        return self._waiting

    async def acquire(self, tokens: int, priority: int = 0, flow: Flow = NO_FLOW) -> Permit:
        """Wait for a concurrency slot and rate budget for a call needing ``tokens``, made for
        ``flow`` (whose fair share it uses while calls wait)."""
        if not self._waiting and self._in_flight < self.max_concurrent:
            now = self._clock.now()
            if self.rate.delay(tokens, now) <= 0.0:
                return self._grant(tokens, now, flow)
        return await self._wait(tokens, priority, flow)

    def release(self, permit: Permit) -> None:
        """Give the slot back; releasing the same permit twice has no further effect."""
        if permit.released:
            return
        permit.released = True
        self._in_flight -= 1
        self._queue.finished(permit.flow)
        if self._waiting:
            self._dispatch()

    def settle(self, permit: Permit, actual_tokens: int) -> None:
        """Book the call's real token usage in place of its estimate."""
        self.rate.settle(permit.tokens, actual_tokens, self._clock.now())
        self._wake()

    def succeeded(
        self, permit: Permit, actual_tokens: int, info: RateLimitInfo | None = None
    ) -> float:
        """Settle, recover and release in one step (the hot path); returns the clock reading."""
        now = self._clock.now()
        rate = self.rate
        rate.settle(permit.tokens, actual_tokens, now)
        rate.on_success(now, info)
        self.release(permit)
        return now

    def on_success(self, info: RateLimitInfo | None = None) -> None:
        """A call succeeded (with the provider's rate-limit headers, when it sent any)."""
        self.rate.on_success(self._clock.now(), info)
        self._wake()

    def on_rate_limited(
        self, permit: Permit, retry_after: float | None, info: RateLimitInfo | None = None
    ) -> None:
        """The call holding ``permit`` got a 429."""
        self.rate.on_rate_limited(permit.epoch, self._clock.now(), retry_after, info)
        self._wake()

    def snapshot(self) -> dict[str, float | None]:
        """Rate state plus concurrency, for metrics and ``GET /v1/endpoints``."""
        state = self.rate.snapshot(self._clock.now())
        state.update(
            max_concurrent=self.max_concurrent, in_flight=self._in_flight, waiting=self._waiting
        )
        return state

    def _grant(self, tokens: int, now: float, flow: Flow) -> Permit:
        self._in_flight += 1
        self.stats.acquired += 1
        self._queue.started(flow)
        return Permit(tokens, self.rate.start(tokens, now), now, flow=flow)

    async def _wait(self, tokens: int, priority: int, flow: Flow) -> Permit:
        loop = asyncio.get_running_loop()
        full = self._in_flight >= self.max_concurrent
        # NOTE: queued while a slot was free means blocked by rate, directly or behind the head.
        now = self._clock.now()
        waiter = _Waiter(tokens, loop.create_future(), now, full, not full, flow)
        self._queue.push(waiter, priority, flow, now)
        self._waiting += 1
        self._dispatch()
        if waiter.future.done():
            return waiter.future.result()
        try:
            permit = await waiter.future
        except asyncio.CancelledError:
            self._abandon(waiter)
            raise
        self._count_wait(waiter, permit)
        return permit

    def _count_wait(self, waiter: _Waiter, permit: Permit) -> None:
        stats = self.stats
        stats.waited_for_slot += waiter.for_slot
        stats.waited_for_rate += waiter.for_rate
        stats.total_wait_s += permit.started_at - waiter.enqueued_at

    def _abandon(self, waiter: _Waiter) -> None:
        future = waiter.future
        if future.done() and not future.cancelled():
            # NOTE: granted between the wake-up and the cancellation: the slot is ours to return.
            self.release(future.result())
            return
        future.cancel()
        self._waiting -= 1
        if len(self._queue) > 2 * self._waiting + 64:
            self._compact()
        self._dispatch()

    def _compact(self) -> None:
        """Drop cancelled waiters buried in the queue so abandoned entries cannot pile up."""
        self._queue.compact()

    def _wake(self) -> None:
        if self._waiting:
            self._dispatch()

    def _dispatch(self) -> None:
        """Grant permits to waiters in order while slots and rate budget allow."""
        while self._in_flight < self.max_concurrent:
            waiter = self._head()
            if waiter is None:
                self._cancel_timer()
                return
            now = self._clock.now()
            wait = self.rate.delay(waiter.tokens, now)
            if wait > 0.0:
                waiter.for_rate = True
                self._arm_timer(waiter, now, wait)
                return
            self._queue.pop()
            self._hand_over(waiter, now)
        self._mark_slot_wait()

    def _head(self) -> _Waiter | None:
        """The next live waiter to serve, dropping cancelled ones."""
        return self._queue.head()

    def _hand_over(self, waiter: _Waiter, now: float) -> None:
        self._waiting -= 1
        waiter.future.set_result(self._grant(waiter.tokens, now, waiter.flow))

    def _mark_slot_wait(self) -> None:
        waiter = self._head()
        if waiter is not None:
            waiter.for_slot = True
        else:
            self._cancel_timer()

    def _arm_timer(self, waiter: _Waiter, now: float, wait: float) -> None:
        """Keep one timer, due when the head waiter's budget is there."""
        due = now + wait
        loop = waiter.future.get_loop()
        if self._timer is not None:
            if self._timer_loop is loop and self._timer_due <= due:
                return  # NOTE: fires no later than needed; the callback re-evaluates.
            self._timer.cancel()
        self._timer = loop.call_later(wait, self._on_timer)
        self._timer_loop = loop
        self._timer_due = due

    def _on_timer(self) -> None:
        self._timer = None
        self._dispatch()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def _waits(waiter: _Waiter) -> bool:
    return not waiter.future.done()
