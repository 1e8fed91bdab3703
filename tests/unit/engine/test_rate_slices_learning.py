"""Leased slices and learned rates together (app/engine/resources/slices.py, learning.py).

A process's ``SlicedRateStore`` takes a slice in one store decision; the store's learned state
must still see every request of it, and a 429 of a call served from a slice must be judged by
the slice's grant time in store time. The store's clock is epoch-like, the process's another
(as a Postgres or Redis clock and the local monotonic one are).
"""

from __future__ import annotations

import pytest

from app.engine.clock import FakeClock
from app.engine.resources.shared import AliasLimits, InMemoryRateStore
from app.engine.resources.slice_settings import SliceSettings
from app.engine.resources.slices import SlicedRateStore

FAST = {"fast": AliasLimits(rpm=60_000)}  # slices of 100 requests at 0.1 s
SETTINGS = SliceSettings(slice_s=0.1, life_s=0.5, hold_s=0.0)


def pair() -> tuple[InMemoryRateStore, SlicedRateStore, FakeClock, FakeClock]:
    store_clock, local_clock = FakeClock(1_000_000.0), FakeClock(100.0)
    store = InMemoryRateStore(FAST, store_clock)
    return store, SlicedRateStore(store, FAST, SETTINGS, local_clock), store_clock, local_clock


def advance(seconds: float, *clocks: FakeClock) -> None:
    for clock in clocks:
        clock.advance(seconds)


async def test_a_cut_counts_every_request_of_a_slice_not_one_grant_per_slice() -> None:
    store, process, *clocks = pair()
    last = None
    for _ in range(250):  # three slices of 100 over 1 s, each spent within its life
        last = await process.acquire("fast")
        assert last.granted
        advance(0.004, *clocks)
    assert process.store_calls == 3
    assert last is not None
    await process.cut("fast", last.at_s)
    learned = (await store.snapshot("fast")).learned_rpm
    assert learned == pytest.approx(0.9 * 300, rel=0.02), "0.9 x the requests granted"


async def test_a_call_from_a_slice_is_granted_at_the_slices_store_time() -> None:
    _, process, store_clock, local_clock = pair()
    first = await process.acquire("fast")
    advance(0.05, store_clock, local_clock)
    second = await process.acquire("fast")
    assert process.store_calls == 1, "the second call came from the slice"
    assert second.at_s == first.at_s == pytest.approx(1_000_000.0)


async def test_a_429_after_a_cut_cuts_again_when_its_slice_came_after_the_cut() -> None:
    store, process, *clocks = pair()
    for _ in range(150):  # the second slice is taken at 0.4 s
        assert (await process.acquire("fast")).granted
        advance(0.004, *clocks)
    before = await process.acquire("fast")
    await process.cut("fast", before.at_s)
    once = (await store.snapshot("fast")).learned_rpm
    assert once is not None
    await process.cut("fast", before.at_s)  # another call of the same slice: no second cut
    assert (await store.snapshot("fast")).learned_rpm == once
    advance(2.0, *clocks)
    calls = process.store_calls
    admissions = [await process.acquire("fast") for _ in range(2)]
    assert process.store_calls == calls + 1, "the cut emptied the slice: a new one was taken"
    decayed = (await store.snapshot("fast")).learned_rpm  # idle time brought it back up
    await process.cut("fast", admissions[-1].at_s)  # served from the new slice, after the cut
    twice = (await store.snapshot("fast")).learned_rpm
    assert decayed is not None
    assert twice is not None
    assert twice < decayed


async def test_stated_limits_pass_through_to_the_store() -> None:
    store, process, *_ = pair()
    await process.learn_limits("fast", 6_000, None)
    assert (await store.snapshot("fast")).learned_rpm == 6_000
    assert process.store_calls == 1
