"""Unmetered passes (app/engine/resources/slices.py): an alias with no configured rate asks
the shared store once per ``life_s`` while no rate is in force, and the store still counts
every call. Each ``SlicedRateStore`` stands for one process on the in-memory store."""

from __future__ import annotations

from app.engine.clock import FakeClock
from app.engine.resources.shared import AliasLimits, InMemoryRateStore
from app.engine.resources.slices import SlicedRateStore, SliceSettings

CAP_ONLY = {"cap": AliasLimits(max_concurrent=16)}
SETTINGS = SliceSettings(slice_s=0.1, life_s=0.5, hold_s=2.0, linger_s=0.01, poll_s=0.02)


def process_on(store: InMemoryRateStore, clock: FakeClock) -> SlicedRateStore:
    return SlicedRateStore(store, CAP_ONLY, SETTINGS, clock)


async def calls(process: SlicedRateStore, count: int) -> list[bool]:
    return [(await process.acquire("cap")).granted for _ in range(count)]


async def test_calls_of_an_unrated_alias_take_one_store_decision_per_life() -> None:
    clock = FakeClock(100.0)
    process = process_on(InMemoryRateStore(CAP_ONLY, clock), clock)
    assert all(await calls(process, 200))
    assert process.store_calls == 1
    clock.advance(SETTINGS.life_s)
    assert all(await calls(process, 200))
    assert process.store_calls == 2


async def test_without_slices_every_call_is_a_store_decision() -> None:
    clock = FakeClock(100.0)
    store = InMemoryRateStore(CAP_ONLY, clock)
    process = SlicedRateStore(store, CAP_ONLY, SliceSettings(slice_s=0.0), clock)
    assert all(await calls(process, 20))
    assert process.store_calls == 20


async def test_passes_are_counted_so_a_429_cuts_from_every_call() -> None:
    clock = FakeClock(100.0)
    store = InMemoryRateStore(CAP_ONLY, clock)
    process = process_on(store, clock)
    assert all(await calls(process, 100))
    clock.advance(SETTINGS.life_s)
    assert all(await calls(process, 1))  # the next decision carries the 99 passes
    await store.cut("cap", granted_at=clock.now())
    learned = (await store.snapshot("cap")).learned_rpm
    assert learned is not None
    assert round(learned, 1) == 90.9, "0.9 x the 101 calls of the minute"


async def test_a_learned_rate_ends_the_passes_in_every_process() -> None:
    clock = FakeClock(100.0)
    store = InMemoryRateStore(CAP_ONLY, clock)
    first, second = process_on(store, clock), process_on(store, clock)
    assert all(await calls(first, 60))
    assert all(await calls(second, 60))
    await first.cut("cap", granted_at=clock.now())
    assert not all(await calls(first, 10)), "the cut process asks the store at once"
    clock.advance(SETTINGS.life_s)
    before = second.store_calls
    answers = await calls(second, 10)
    assert not all(answers), "the other process is held to the learned rate after life_s"
    assert second.store_calls - before == len(answers)


async def test_a_pause_set_elsewhere_is_seen_within_the_life() -> None:
    clock = FakeClock(100.0)
    store = InMemoryRateStore(CAP_ONLY, clock)
    first, second = process_on(store, clock), process_on(store, clock)
    assert all(await calls(second, 1))
    await first.block("cap", 5.0)
    clock.advance(SETTINGS.life_s)
    refused = await second.acquire("cap")
    assert not refused.granted
    assert refused.retry_after_s > 4.0
