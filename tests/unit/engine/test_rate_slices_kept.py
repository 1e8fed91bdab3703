"""Slot leases kept while nobody waits (app/engine/resources/slices.py): a process alone on an
alias holds its leases hold after hold, and gives them back at the end of a hold once the
store says another process was refused a slot. Each ``SlicedRateStore`` stands for one
process on the in-memory store."""

from __future__ import annotations

import asyncio

from app.engine.clock import FakeClock
from app.engine.resources.shared import AliasLimits, InMemoryRateStore
from app.engine.resources.slice_settings import SliceSettings
from app.engine.resources.slices import SlicedRateStore
from tests.support.polling import until

ONE = {"one": AliasLimits(max_concurrent=1)}
SETTINGS = SliceSettings(slice_s=0.1, life_s=0.5, hold_s=2.0, linger_s=0.01, poll_s=0.02)
HOLD_S = SETTINGS.for_lease(30.0).hold_s


def process_on(store: InMemoryRateStore, clock: FakeClock) -> SlicedRateStore:
    return SlicedRateStore(store, ONE, SETTINGS, clock)


async def call_through_hold(process: SlicedRateStore, clock: FakeClock, call: str) -> None:
    """One call that holds the slot past the end of the lease's hold, in a busy process: a
    budget decision (the unmetered passes lapsed) shortly before the call ends carries the
    store's word on waiting processes."""
    assert await process.acquire_slot("one", call, ttl_s=30.0)
    clock.advance(HOLD_S)
    await asyncio.sleep(0)  # NOTE: the call's own I/O: the loop runs the background work
    assert (await process.acquire("one")).granted
    await process.release_slot("one", call)


async def test_a_lone_process_keeps_its_lease_past_the_hold() -> None:
    clock = FakeClock(100.0)
    store = InMemoryRateStore(ONE, clock)
    process = process_on(store, clock)
    for call in range(12):
        await call_through_hold(process, clock, f"call-{call}")
    assert (await store.snapshot("one")).slots_used == 1, "kept, not given back"
    slot_ops = process.store_calls - 12  # one budget decision per call
    assert slot_ops == 2, "one lease taken, renewed once in 18 s, never given back and retaken"


async def test_a_process_refused_a_slot_gets_it_within_a_hold() -> None:
    clock = FakeClock(100.0)
    store = InMemoryRateStore(ONE, clock)
    holder, waiter = process_on(store, clock), process_on(store, clock)
    await call_through_hold(holder, clock, "a")
    assert await holder.acquire_slot("one", "c", ttl_s=30.0)
    clock.advance(HOLD_S)
    assert not await waiter.acquire_slot("one", "b", ttl_s=30.0)
    assert (await holder.acquire("one")).contended
    await holder.release_slot("one", "c")
    assert (await store.snapshot("one")).slots_used == 0, "given back at the end of its hold"
    assert await waiter.acquire_slot("one", "b", ttl_s=30.0)


async def test_a_kept_lease_is_renewed_before_it_lapses() -> None:
    clock = FakeClock(100.0)
    store = InMemoryRateStore(ONE, clock)
    process, other = process_on(store, clock), process_on(store, clock)
    for call in range(40):  # 40 holds of 2 s: 80 s, well past the 30-s lease
        await call_through_hold(process, clock, f"call-{call}")
    assert (await store.snapshot("one")).slots_used == 1
    assert not await store.acquire_slot("one", "other", ttl_s=30.0), "still renewed, held"
    assert other.store_calls == 0


async def test_without_reuse_a_lease_is_never_kept() -> None:
    clock = FakeClock(100.0)
    store = InMemoryRateStore(ONE, clock)
    process = SlicedRateStore(store, ONE, SliceSettings(hold_s=0.0), clock)
    await call_through_hold(process, clock, "a")
    assert (await store.snapshot("one")).slots_used == 0


async def test_a_lease_whose_hold_ended_while_it_lay_idle_is_held_again() -> None:
    clock = FakeClock(100.0)
    store = InMemoryRateStore(ONE, clock)
    process = process_on(store, clock)
    assert await process.acquire_slot("one", "a", ttl_s=30.0)
    clock.advance(HOLD_S - 0.001)
    assert (await process.acquire("one")).granted
    await process.release_slot("one", "a")  # still fresh: offered to the next call
    clock.advance(0.002)  # its hold ends before the next call takes it
    before = process.store_calls
    assert await process.acquire_slot("one", "b", ttl_s=30.0)
    assert process.store_calls == before, "held again, not given back and taken anew"


async def test_one_store_operation_renews_every_lease_of_the_process() -> None:
    clock = FakeClock(100.0)
    limits = {"many": AliasLimits(max_concurrent=8)}
    store = InMemoryRateStore(limits, clock)
    process = SlicedRateStore(store, limits, SETTINGS, clock)
    calls = [f"call-{n}" for n in range(8)]
    for call in calls:
        assert await process.acquire_slot("many", call, ttl_s=30.0)
    clock.advance(20.0)
    before = process.store_calls
    assert await process.renew_slots("many", calls, ttl_s=30.0) == set()
    assert process.store_calls == before + 1
    clock.advance(20.0)  # 40 s after they were taken: alive only if renewed
    assert (await store.snapshot("many")).slots_used == 8
    clock.advance(31.0)
    assert await process.renew_slots("many", calls[:2], ttl_s=30.0) == set(calls[:2])


async def test_while_nobody_waits_an_idle_lease_lies_idle_for_a_third_of_its_time() -> None:
    clock = FakeClock(100.0)
    store = InMemoryRateStore(ONE, clock)
    process = process_on(store, clock)
    short_hold = SETTINGS.for_lease(3.0).hold_s  # 0.15 s
    assert await process.acquire_slot("one", "a", ttl_s=3.0)
    assert (await process.acquire("one")).granted  # the store's word: nobody waits
    await process.release_slot("one", "a")
    await asyncio.sleep(3 * SETTINGS.linger_s)
    assert (await store.snapshot("one")).slots_used == 1, "kept past the linger"
    clock.advance(short_hold)
    await asyncio.sleep(2 * short_hold)
    assert (await store.snapshot("one")).slots_used == 1, "held again past its hold"
    clock.advance(1.0)  # a third of the 3-s lease since it lay idle

    async def given_back() -> bool:
        return (await store.snapshot("one")).slots_used == 0

    await until(given_back, timeout_s=5.0)
