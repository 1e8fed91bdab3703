"""The endpoint gate: concurrency cap, priority order, cancellation and timer-driven waits."""

from __future__ import annotations

import asyncio
import random
import time

import pytest

from app.engine.resources.gate import EndpointGate, Permit
from app.engine.resources.limiter import RateState


class CountingRate(RateState):
    """A RateState that counts how often the gate asks for a delay (to catch polling)."""

    def __init__(self, *, rpm: float | None, tpm: float | None) -> None:
        super().__init__(rpm=rpm, tpm=tpm, now=time.monotonic())
        self.delay_calls = 0

    def delay(self, tokens: int, now: float) -> float:
        self.delay_calls += 1
        return super().delay(tokens, now)


def open_gate(
    max_concurrent: int, rpm: float | None = None, tpm: float | None = None
) -> EndpointGate:
    return EndpointGate(max_concurrent=max_concurrent, rate=CountingRate(rpm=rpm, tpm=tpm))


async def settle_loop(rounds: int = 5) -> None:
    for _ in range(rounds):
        await asyncio.sleep(0)


async def test_uncontended_acquire_does_not_suspend() -> None:
    gate = open_gate(2)
    coro = gate.acquire(10)

    with pytest.raises(StopIteration) as done:
        coro.send(None)

    permit = done.value.value
    assert isinstance(permit, Permit)
    assert (permit.tokens, permit.epoch, gate.in_flight) == (10, 0, 1)


async def test_never_more_than_max_concurrent_in_flight() -> None:
    gate = open_gate(5)
    peak = 0
    rng = random.Random(7)

    async def call() -> None:
        nonlocal peak
        permit = await gate.acquire(1, priority=rng.randint(0, 3))
        peak = max(peak, gate.in_flight)
        await asyncio.sleep(rng.random() / 1000)
        gate.release(permit)

    await asyncio.wait_for(asyncio.gather(*(call() for _ in range(200))), timeout=10)

    assert peak == 5
    assert (gate.in_flight, gate.waiting) == (0, 0)
    assert gate.stats.acquired == 200
    assert gate.stats.waited_for_slot == 195


async def test_waiters_are_served_by_priority_then_fifo() -> None:
    gate = open_gate(1)
    holder = await gate.acquire(1)
    order: list[str] = []

    async def call(label: str, priority: int) -> None:
        permit = await gate.acquire(1, priority=priority)
        order.append(label)
        gate.release(permit)

    arrivals = [("a", 5), ("b", 1), ("c", 3), ("d", 1), ("e", 0), ("f", 3), ("g", 1)]
    tasks = [asyncio.create_task(call(label, priority)) for label, priority in arrivals]
    await settle_loop()
    assert gate.waiting == len(arrivals)

    gate.release(holder)
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=5)

    assert order == ["e", "b", "d", "g", "c", "f", "a"]


async def test_equal_priority_waiters_are_first_come_first_served() -> None:
    gate = open_gate(1)
    holder = await gate.acquire(1)
    order: list[int] = []

    async def call(index: int) -> None:
        permit = await gate.acquire(1)
        order.append(index)
        await asyncio.sleep(0)
        gate.release(permit)

    tasks = []
    for index in range(20):
        tasks.append(asyncio.create_task(call(index)))
        await asyncio.sleep(0)
    gate.release(holder)
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=5)

    assert order == list(range(20))


async def test_release_wakes_the_next_waiter() -> None:
    gate = open_gate(1)
    holder = await gate.acquire(1)
    waiter = asyncio.create_task(gate.acquire(1))
    await asyncio.sleep(0.01)
    assert not waiter.done()

    gate.release(holder)
    await settle_loop(2)

    assert waiter.done()
    assert gate.in_flight == 1
    assert gate.stats.waited_for_slot == 1


async def test_cancelled_waiter_leaks_nothing() -> None:
    gate = open_gate(1)
    holder = await gate.acquire(1)
    first = asyncio.create_task(gate.acquire(1))
    doomed = asyncio.create_task(gate.acquire(1))
    last = asyncio.create_task(gate.acquire(1))
    await settle_loop()

    doomed.cancel()
    await settle_loop()
    assert gate.waiting == 2

    gate.release(holder)
    gate.release(await asyncio.wait_for(first, timeout=1))
    gate.release(await asyncio.wait_for(last, timeout=1))

    assert doomed.cancelled()
    assert (gate.in_flight, gate.waiting) == (0, 0)
    assert gate.stats.acquired == 3


async def test_waiter_cancelled_after_its_grant_gives_the_slot_back() -> None:
    gate = open_gate(1)
    holder = await gate.acquire(1)
    waiter = asyncio.create_task(gate.acquire(1))
    await settle_loop()

    gate.release(holder)  # grants the waiter's permit before the waiter runs again
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter

    assert (gate.in_flight, gate.waiting) == (0, 0)
    assert gate.stats.acquired == 2


async def test_cancelling_a_rate_blocked_head_lets_the_next_waiter_go() -> None:
    gate = open_gate(4, tpm=60_000)  # 1,000 tokens per second, bucket of 1,000
    gate.release(await gate.acquire(1_000))
    big = asyncio.create_task(gate.acquire(1_000))  # needs a full bucket: about 1 s
    await settle_loop()
    small = asyncio.create_task(gate.acquire(1, priority=1))
    await settle_loop()
    assert not small.done()

    big.cancel()
    permit = await asyncio.wait_for(small, timeout=0.2)

    gate.release(permit)
    assert (gate.in_flight, gate.waiting) == (0, 0)


async def test_rate_delay_wakes_the_waiter_on_time_without_polling() -> None:
    gate = open_gate(4, tpm=6_000_000)  # 100,000 tokens per second, bucket of 100,000
    rate = gate.rate
    assert isinstance(rate, CountingRate)
    gate.release(await gate.acquire(100_000))
    calls_before = rate.delay_calls
    began = time.monotonic()

    permit = await asyncio.wait_for(gate.acquire(5_000), timeout=2)  # 50 ms of refill

    waited = time.monotonic() - began
    assert 0.049 <= waited <= 0.05 + 0.25
    assert rate.delay_calls - calls_before <= 4
    assert gate.stats.waited_for_rate == 1
    assert gate.stats.total_wait_s == pytest.approx(waited, abs=0.01)
    gate.release(permit)


async def test_retry_after_holds_every_waiter_until_it_expires() -> None:
    gate = open_gate(8, rpm=60_000)
    rate = gate.rate
    assert isinstance(rate, CountingRate)
    first = await gate.acquire(1)
    gate.on_rate_limited(first, retry_after=0.04)
    gate.release(first)
    began = time.monotonic()

    permits = await asyncio.wait_for(asyncio.gather(*(gate.acquire(1) for _ in range(3))), 2)

    granted = [p.started_at - began for p in permits]
    assert all(0.039 <= at <= 0.04 + 0.25 for at in granted)
    assert rate.delay_calls < 20
    for permit in permits:
        gate.release(permit)


async def test_settle_refund_wakes_a_token_waiter_early() -> None:
    gate = open_gate(4, tpm=6_000)  # 100 tokens per second
    permit = await gate.acquire(100)
    waiter = asyncio.create_task(gate.acquire(100))  # would wait 1 s
    await settle_loop()
    assert not waiter.done()

    gate.settle(permit, actual_tokens=0)

    gate.release(await asyncio.wait_for(waiter, timeout=0.2))
    gate.release(permit)


async def test_release_twice_frees_one_slot_only() -> None:
    gate = open_gate(2)
    first = await gate.acquire(1)
    await gate.acquire(1)

    gate.release(first)
    gate.release(first)

    assert gate.in_flight == 1


async def test_snapshot_combines_concurrency_and_rate_state() -> None:
    gate = open_gate(3, rpm=600)
    permit = await gate.acquire(1)

    snap = gate.snapshot()

    assert (snap["max_concurrent"], snap["in_flight"], snap["waiting"]) == (3, 1, 0)
    assert snap["rpm"] == 600
    gate.release(permit)
