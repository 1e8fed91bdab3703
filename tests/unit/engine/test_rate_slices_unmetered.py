"""Unmetered passes (app/engine/resources/slices.py): an alias with no configured rate asks
the shared store once per ``life_s`` while no rate is in force, and the store still counts
every call. Each ``SlicedRateStore`` stands for one process on the in-memory store."""

from __future__ import annotations

import asyncio

import pytest

from app.engine.clock import FakeClock
from app.engine.resources.shared import Admission, AliasLimits, InMemoryRateStore
from app.engine.resources.slice_settings import SliceSettings
from app.engine.resources.slices import SlicedRateStore

CAP_ONLY = {"cap": AliasLimits(max_concurrent=16)}
SETTINGS = SliceSettings(slice_s=0.1, life_s=0.5, hold_s=2.0, linger_s=0.01, poll_s=0.02)


class SlowStore(InMemoryRateStore):
    """The in-memory store answering its budget decisions ``delay_s`` late (a SQLite file
    whose write lock another writer holds, say)."""

    delay_s = 0.0

    async def acquire(self, alias: str, requests: int = 1, tokens: int = 0) -> Admission:
        await asyncio.sleep(self.delay_s)
        return await super().acquire(alias, requests, tokens)


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
    await asyncio.sleep(0)  # NOTE: the decision renewing the passes runs in the background
    assert process.store_calls == 2


async def test_calls_never_wait_for_the_decision_that_renews_the_passes() -> None:
    clock = FakeClock(100.0)
    store = SlowStore(CAP_ONLY, clock)
    process = process_on(store, clock)
    assert all(await calls(process, 1))
    clock.advance(SETTINGS.life_s)
    store.delay_s = 3600.0
    tasks_before = len(asyncio.all_tasks())
    assert all(await asyncio.wait_for(calls(process, 50), timeout=1.0)), "none waited"
    assert len(asyncio.all_tasks()) - tasks_before == 1, "one decision, not one per call"
    clock.advance(SETTINGS.life_s)
    with pytest.raises(TimeoutError):  # NOTE: a second life without an answer: calls wait
        await asyncio.wait_for(calls(process, 1), timeout=0.2)


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
    await asyncio.sleep(0)
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
    assert all(await calls(second, 1)), "a pass while the store is asked again"
    await asyncio.sleep(0)
    before = second.store_calls
    answers = await calls(second, 10)
    assert not all(answers), "the other process is held to the learned rate after that"
    assert second.store_calls - before == len(answers)


async def test_a_pause_set_elsewhere_is_seen_within_two_lives() -> None:
    clock = FakeClock(100.0)
    store = InMemoryRateStore(CAP_ONLY, clock)
    first, second = process_on(store, clock), process_on(store, clock)
    assert all(await calls(second, 1))
    await first.block("cap", 5.0)
    clock.advance(2 * SETTINGS.life_s)
    refused = await second.acquire("cap")
    assert not refused.granted
    assert refused.retry_after_s >= 4.0
