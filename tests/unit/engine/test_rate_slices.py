"""Leased slices of a shared budget (app/engine/resources/slices.py), on the in-memory store.

Each ``SlicedRateStore`` stands for one process; the store behind it is the shared one.
"""

from __future__ import annotations

import asyncio

from app.engine import LLMInference, run
from app.engine.clock import FakeClock
from app.engine.resources.config import ResourceConfig
from app.engine.resources.manager import ResourceManager
from app.engine.resources.shared import AliasLimits, InMemoryRateStore
from app.engine.resources.sharing import SharedAdmission
from app.engine.resources.slice_settings import SliceSettings
from app.engine.resources.slices import SlicedRateStore
from app.engine.testing import ScriptedLLM
from tests.support.polling import until

FAST = {"fast": AliasLimits(rpm=60_000, max_concurrent=4)}  # 1000/s: slices of 100 at 0.1 s
SLOW = {"slow": AliasLimits(rpm=600, tpm=30_000, max_concurrent=4)}  # 1 request per slice
SETTINGS = SliceSettings(slice_s=0.1, life_s=0.5, hold_s=2.0, linger_s=0.01, poll_s=0.02)


def sliced(
    store: InMemoryRateStore, limits: dict[str, AliasLimits], clock: FakeClock
) -> SlicedRateStore:
    return SlicedRateStore(store, limits, SETTINGS, clock)


async def test_a_slice_serves_many_calls_with_one_store_decision() -> None:
    clock = FakeClock(100.0)
    store = InMemoryRateStore(FAST, clock)
    process = sliced(store, FAST, clock)
    granted = [(await process.acquire("fast")).granted for _ in range(250)]
    assert all(granted)
    assert process.store_calls == 3, "250 calls took three slices of 100"
    used = (await store.snapshot("fast")).requests.used
    assert round(used) == 300, "the store debited whole slices"


async def test_an_alias_under_one_request_per_slice_is_decided_call_by_call() -> None:
    clock = FakeClock(100.0)
    store = InMemoryRateStore(SLOW, clock)
    process = sliced(store, SLOW, clock)
    plain = InMemoryRateStore(SLOW, clock)
    answers = [(await process.acquire("slow", tokens=100)).granted for _ in range(12)]
    expected = [(await plain.acquire("slow", tokens=100)).granted for _ in range(12)]
    assert process.store_calls == 12
    assert answers == expected
    assert answers.count(False) > 0


async def test_a_lapsed_slice_gives_its_tokens_back() -> None:
    clock = FakeClock(100.0)
    limits = {"m": AliasLimits(rpm=60_000, tpm=6_000_000)}  # slices of 100 calls, 10 000 tokens
    store = InMemoryRateStore(limits, clock)
    process = sliced(store, limits, clock)
    assert (await process.acquire("m", tokens=1_000)).granted
    assert round((await store.snapshot("m")).tokens.used) == 10_000
    clock.advance(SETTINGS.life_s)
    assert (await process.acquire("m", tokens=1_000)).granted
    tokens = (await store.snapshot("m")).tokens.used
    assert 9_000 < tokens < 10_100, "the 9 000 unspent tokens went back before the new slice"


async def test_a_pause_empties_the_slice_and_refuses_at_once() -> None:
    clock = FakeClock(100.0)
    store = InMemoryRateStore(FAST, clock)
    process = sliced(store, FAST, clock)
    assert (await process.acquire("fast")).granted
    await process.block("fast", 5.0)
    refused = await process.acquire("fast")
    assert not refused.granted
    assert refused.retry_after_s > 4.9


async def test_other_processes_see_a_pause_at_their_next_slice() -> None:
    clock = FakeClock(100.0)
    store = InMemoryRateStore(FAST, clock)
    first, second = sliced(store, FAST, clock), sliced(store, FAST, clock)
    assert (await second.acquire("fast")).granted
    await first.block("fast", 5.0)
    spent = 0
    while (await second.acquire("fast")).granted:
        spent += 1
    assert spent == 99, "the rest of its slice, then the pause"


async def test_the_overshoot_is_at_most_one_slice_per_process() -> None:
    clock = FakeClock(100.0)
    store = InMemoryRateStore(FAST, clock)
    processes = [sliced(store, FAST, clock) for _ in range(4)]
    alone = InMemoryRateStore(FAST, clock)
    granted = alone_granted = 0
    for _ in range(50):  # 5 s in steps of 0.1 s, each process asking 60 times a step
        for process in processes:
            granted += sum([(await process.acquire("fast")).granted for _ in range(60)])
        alone_granted += sum([(await alone.acquire("fast")).granted for _ in range(240)])
        clock.advance(0.1)
    slice_size = 100
    assert granted <= alone_granted + len(processes) * slice_size
    assert granted >= 0.9 * alone_granted, "slices lose little of the budget"


async def test_a_released_lease_passes_to_the_next_call_without_the_store() -> None:
    clock = FakeClock(100.0)
    store = InMemoryRateStore(FAST, clock)
    process = sliced(store, FAST, clock)
    assert await process.acquire_slot("fast", "call-1", ttl_s=30.0)
    await process.release_slot("fast", "call-1")
    assert await process.acquire_slot("fast", "call-2", ttl_s=30.0)
    assert process.store_calls == 1
    held = await store.snapshot("fast")
    assert held.slots_used == 1


async def test_an_unclaimed_lease_goes_back_to_the_store_after_the_linger() -> None:
    clock = FakeClock(100.0)
    store = InMemoryRateStore(FAST, clock)
    process = sliced(store, FAST, clock)
    assert await process.acquire_slot("fast", "call-1", ttl_s=30.0)
    await process.release_slot("fast", "call-1")

    async def given_back() -> bool:
        return (await store.snapshot("fast")).slots_used == 0

    await until(given_back, timeout_s=5.0)
    assert process.store_calls == 2


async def test_a_lease_held_its_time_goes_back_and_the_process_lets_others_take_it() -> None:
    clock = FakeClock(100.0)
    limits = {"one": AliasLimits(max_concurrent=1)}
    store = InMemoryRateStore(limits, clock)
    first, second = sliced(store, limits, clock), sliced(store, limits, clock)
    assert await first.acquire_slot("one", "a", ttl_s=30.0)
    assert not await second.acquire_slot("one", "b", ttl_s=30.0)
    clock.advance(SETTINGS.for_lease(30.0).hold_s)
    await first.release_slot("one", "a")
    assert (await store.snapshot("one")).slots_used == 0, "given back, not passed on"
    assert not await first.acquire_slot("one", "c", ttl_s=30.0), "the first yields a moment"
    assert await second.acquire_slot("one", "b", ttl_s=30.0)


async def test_the_hold_is_short_against_a_short_lease() -> None:
    assert SETTINGS.for_lease(3.0).hold_s == 0.15
    assert SETTINGS.for_lease(60.0).hold_s == 2.0


async def test_a_renewal_renews_the_reused_lease_in_the_store() -> None:
    clock = FakeClock(100.0)
    limits = {"one": AliasLimits(max_concurrent=1)}
    store = InMemoryRateStore(limits, clock)
    process = sliced(store, limits, clock)
    assert await process.acquire_slot("one", "a", ttl_s=3.0)
    clock.advance(2.0)
    assert await process.acquire_slot("one", "a", ttl_s=3.0)
    clock.advance(2.0)
    assert not await store.acquire_slot("one", "other", ttl_s=3.0), "renewed, still held"


async def test_managers_with_slices_keep_the_cap_and_give_every_lease_back() -> None:
    model = ScriptedLLM(latency_s=0.02)
    limits = {"fast": AliasLimits(rpm=60_000, max_concurrent=3)}
    store = InMemoryRateStore(limits)
    config = ResourceConfig.from_dict(
        {
            "endpoints": {
                "fast": {"provider": "simulated", "model": "m", "rpm": 60_000, "max_concurrent": 3}
            }
        }
    )
    managers = [
        ResourceManager(
            config, client_factory=lambda *_: model, shared_store=store, shared_slices=SETTINGS
        )
        for _ in range(2)
    ]
    await asyncio.gather(
        *(run(LLMInference("fast"), f"q{n}", resources=managers[n % 2]) for n in range(24))
    )
    assert (len(model.calls), model.peak_in_flight) == (24, 3)

    for manager in managers:
        await manager.aclose()
    assert (await store.snapshot("fast")).slots_used == 0, "closing gave the idle leases back"


async def test_a_leave_the_store_takes_no_part_in_is_done_at_once() -> None:
    clock = FakeClock(100.0)
    store = InMemoryRateStore(FAST, clock)
    process = sliced(store, FAST, clock)
    admission = SharedAdmission(process, "fast", FAST["fast"])
    lease = await admission.enter(tokens=10)
    before = process.store_calls
    assert admission.leave_now(lease) is None, "nothing to await: the slot passed on"
    await admission.enter(tokens=10)
    assert process.store_calls == before, "the next call took the pooled slot"
    assert (await store.snapshot("fast")).slots_used == 1


async def test_a_leave_with_usage_to_book_is_left_to_the_store() -> None:
    clock = FakeClock(100.0)
    store = InMemoryRateStore(SLOW, clock)
    process = sliced(store, SLOW, clock)
    admission = SharedAdmission(process, "slow", SLOW["slow"])
    lease = await admission.enter(tokens=1_000)
    lease.used_tokens = 200
    rest = admission.leave_now(lease)
    assert rest is not None, "the unused estimate goes back to the store"
    await rest
    assert round((await store.snapshot("slow")).tokens.used) == 200
