"""``snapshot``: every shared store shows budgets, pause and leases by process, read only."""

from __future__ import annotations

import pytest

from app.engine.resources.shared import AliasLimits
from app.engine.resources.store_state import holder_of, lease_owner, process_id
from tests.integration.limiting import test_shared_store as contract
from tests.integration.limiting.test_shared_store import StoreFactory

# The store contract's fixtures: every test here runs on memory, Redis and Postgres.
backend, make_store = contract.backend, contract.make_store

# NOTE: slow rates (a request earned back every 10 s) keep the figures steady on a busy machine.
LIMITS = {"m": AliasLimits(rpm=6, tpm=600, max_concurrent=3, burst_s=100.0)}


async def test_an_unused_alias_shows_its_whole_budget(make_store: StoreFactory) -> None:
    seen = await make_store(LIMITS).snapshot("m")
    # The burst is at most a minute's budget (no 60-s window may hold more than rpm).
    assert (seen.requests.limit_per_minute, seen.requests.capacity) == (6, 6.0)
    assert (seen.requests.used, seen.requests.available) == (0.0, 6.0)
    assert seen.tokens.available == 600.0
    assert (seen.max_concurrent, seen.leases, seen.blocked_for_s) == (3, {}, 0.0)
    assert (seen.learned_rpm, seen.learned_tpm, seen.fallback) == (None, None, False)


async def test_spent_budget_pause_and_leases_show_by_process(make_store: StoreFactory) -> None:
    store = make_store(LIMITS)
    assert (await store.acquire("m", 2, 400)).granted
    await store.block("m", 30.0)
    mine = [lease_owner() for _ in range(2)]
    for owner in [*mine, "other-host-7:abc"]:
        assert await store.acquire_slot("m", owner, ttl_s=30)
    seen = await store.snapshot("m")
    assert seen.requests.used == pytest.approx(2.0, abs=0.1)
    assert seen.tokens.used == pytest.approx(400.0, abs=10.0)
    assert seen.tokens.available == pytest.approx(200.0, abs=10.0)
    assert 29.0 < seen.blocked_for_s <= 30.0
    assert seen.leases == {process_id(): 2, "other-host-7": 1}
    assert seen.slots_used == 3


async def test_a_snapshot_changes_nothing(make_store: StoreFactory) -> None:
    store = make_store({"m": AliasLimits(rpm=60, max_concurrent=1)})
    assert await store.acquire_slot("m", "a:1", ttl_s=30)
    assert (await store.acquire("m")).granted
    for _ in range(3):
        await store.snapshot("m")
    assert not await store.acquire_slot("m", "b:2", ttl_s=30)
    assert not (await store.acquire("m")).granted
    await store.release_slot("m", "a:1")
    assert (await store.snapshot("m")).leases == {}


def test_lease_owners_name_their_process() -> None:
    assert holder_of(lease_owner()) == process_id()
    assert holder_of("9f2c0d") == "unknown"
