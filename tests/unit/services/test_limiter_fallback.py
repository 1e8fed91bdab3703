"""``FallbackRateStore``: the local share while the store does not answer, and back again.

The wrapped store is an in-memory one behind a switch (``Outage``) that refuses connections,
or hangs, like a Redis that went away; the wrapper under test is the real one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Collection

import pytest

from app.engine.clock import FakeClock
from app.engine.errors import ConfigError
from app.engine.resources.shared import Admission, AliasLimits, InMemoryRateStore
from app.engine.resources.store_state import StoreSnapshot
from app.services.limiting.fallback import FallbackRateStore, local_share

LIMITS = {"m": AliasLimits(max_concurrent=4, rpm=600)}
PROBE_S = 2.0


class Outage:
    """A shared store that can be ``down`` (connection refused) or ``hung`` (never answers)."""

    def __init__(self, clock: FakeClock) -> None:
        self.inner = InMemoryRateStore(LIMITS, clock)
        self.down = self.hung = False
        self.attempts = 0
        self.delay = 0.0

    async def _reach(self) -> None:
        self.attempts += 1
        await asyncio.sleep(self.delay)
        if self.hung:
            await asyncio.sleep(3600)
        if self.down:
            raise ConnectionRefusedError("connection refused")

    async def acquire(self, alias: str, requests: int = 1, tokens: int = 0) -> Admission:
        await self._reach()
        return await self.inner.acquire(alias, requests, tokens)

    async def refund(self, alias: str, tokens: int) -> None:
        await self._reach()
        await self.inner.refund(alias, tokens)

    async def acquire_slot(self, alias: str, owner: str, ttl_s: float) -> bool:
        await self._reach()
        return await self.inner.acquire_slot(alias, owner, ttl_s)

    async def renew_slots(self, alias: str, owners: Collection[str], ttl_s: float) -> set[str]:
        await self._reach()
        return await self.inner.renew_slots(alias, owners, ttl_s)

    async def release_slot(self, alias: str, owner: str) -> None:
        await self._reach()
        await self.inner.release_slot(alias, owner)

    async def block(self, alias: str, seconds: float) -> None:
        await self._reach()
        await self.inner.block(alias, seconds)

    async def blocked_for(self, alias: str) -> float:
        await self._reach()
        return await self.inner.blocked_for(alias)

    async def snapshot(self, alias: str) -> StoreSnapshot:
        await self._reach()
        return await self.inner.snapshot(alias)

    async def cut(self, alias: str, granted_at: float) -> None:
        await self._reach()
        await self.inner.cut(alias, granted_at)

    async def learn_limits(self, alias: str, rpm: int | None, tpm: int | None) -> None:
        await self._reach()
        await self.inner.learn_limits(alias, rpm, tpm)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=100.0)


@pytest.fixture
def outage(clock: FakeClock) -> Outage:
    return Outage(clock)


@pytest.fixture
def store(outage: Outage, clock: FakeClock) -> FallbackRateStore:
    return FallbackRateStore(
        outage, LIMITS, share=0.5, timeout_s=0.05, probe_s=PROBE_S, clock=clock
    )


async def slots_taken(store: FallbackRateStore, owners: list[str]) -> list[bool]:
    return [await store.acquire_slot("m", owner, ttl_s=30) for owner in owners]


async def test_while_the_store_answers_it_decides(store: FallbackRateStore, outage: Outage) -> None:
    assert await slots_taken(store, ["a", "b", "c", "d", "e"]) == [True] * 4 + [False]
    assert (await outage.inner.snapshot("m")).slots_used == 4
    assert not store.status.active
    assert sum(store.status.decisions.values()) == 0


async def test_a_refused_connection_limits_to_the_share_and_warns_once(
    store: FallbackRateStore, outage: Outage, caplog: pytest.LogCaptureFixture
) -> None:
    outage.down = True
    with caplog.at_level(logging.WARNING, "app.services.limiting.fallback"):
        taken = await slots_taken(store, ["a", "b", "c", "d"])
        assert (await store.acquire("m")).granted
    assert taken == [True, True, False, False]
    assert store.status.active
    assert store.status.entered == 1
    assert store.status.decisions["m"] == 5
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "unreachable" in warnings[0]
    assert "0.5" in warnings[0]


async def test_a_hung_store_costs_a_call_the_timeout_at_most(
    store: FallbackRateStore, outage: Outage
) -> None:
    outage.hung = True
    started = time.monotonic()
    assert await store.acquire_slot("m", "a", ttl_s=30)
    assert await store.acquire_slot("m", "b", ttl_s=30)
    assert time.monotonic() - started < 1.0
    assert store.status.active
    assert outage.attempts == 1  # the second call did not wait on the store again


async def test_the_store_is_probed_at_a_bounded_rate_and_resumes(
    store: FallbackRateStore, outage: Outage, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    outage.down = True
    for _ in range(20):
        await store.acquire("m", 1, 0)
    assert outage.attempts == 1
    clock.advance(PROBE_S)
    await store.acquire("m")
    await store.acquire("m")
    assert outage.attempts == 2
    outage.down = False
    clock.advance(PROBE_S)
    caplog.clear()
    with caplog.at_level(logging.WARNING, "app.services.limiting.fallback"):
        await store.acquire("m")
        assert await slots_taken(store, ["a", "b", "c", "d"]) == [True] * 4
    assert not store.status.active
    assert (await outage.inner.snapshot("m")).slots_used == 4
    [back] = [r.getMessage() for r in caplog.records]
    assert back.startswith("shared rate store answers again")


async def test_a_slow_store_keeps_the_cap_shared_across_processes(
    outage: Outage, clock: FakeClock
) -> None:
    """Another process fills the cap; this one's store answers, but late: it must wait, not
    add its local share on top (10 in flight against 8 once, on a loaded machine)."""
    other, this = (
        FallbackRateStore(outage, LIMITS, share=0.5, timeout_s=0.05, probe_s=PROBE_S, clock=clock)
        for _ in range(2)
    )
    assert await this.acquire_slot("m", "mine", ttl_s=30)
    assert await slots_taken(other, ["a", "b", "c"]) == [True] * 3
    outage.delay = 0.2
    assert await slots_taken(this, ["x", "y"]) == [False, False]
    assert not this.status.active
    assert (await outage.inner.snapshot("m")).slots_used == 4
    assert not (await this.local.snapshot("m")).leases


async def test_slots_held_in_the_store_count_in_the_local_share(
    store: FallbackRateStore, outage: Outage
) -> None:
    assert await slots_taken(store, ["a", "b"]) == [True, True]
    outage.down = True
    assert await slots_taken(store, ["c"]) == [False]
    await store.release_slot("m", "a")
    assert await slots_taken(store, ["c", "d"]) == [True, False]


async def test_a_slot_taken_in_fallback_is_released_after_the_store_returns(
    store: FallbackRateStore, outage: Outage, clock: FakeClock
) -> None:
    outage.down = True
    assert await slots_taken(store, ["a", "b"]) == [True, True]
    outage.down = False
    clock.advance(PROBE_S)
    await store.release_slot("m", "a")
    await store.release_slot("m", "b")
    assert (await store.local.snapshot("m")).leases == {}


async def test_slots_taken_in_fallback_count_in_the_store_once_it_is_back(
    store: FallbackRateStore, outage: Outage, clock: FakeClock
) -> None:
    outage.down = True
    assert await slots_taken(store, ["a", "b"]) == [True, True]
    outage.down = False
    clock.advance(PROBE_S)
    assert await store.blocked_for("m") == 0  # the probe that ends the fallback
    assert (await outage.inner.snapshot("m")).slots_used == 2
    other = FallbackRateStore(outage, LIMITS, share=0.5, timeout_s=0.05, clock=clock)
    assert await slots_taken(other, ["c", "d", "e"]) == [True, True, False]
    await store.release_slot("m", "a")
    assert await slots_taken(other, ["e"]) == [True]


async def test_the_snapshot_says_when_it_is_the_local_share(
    store: FallbackRateStore, outage: Outage
) -> None:
    assert not (await store.snapshot("m")).fallback
    outage.down = True
    seen = await store.snapshot("m")
    assert seen.fallback
    assert seen.max_concurrent == 2
    assert seen.requests.limit_per_minute == 300


async def test_other_errors_are_not_an_outage(store: FallbackRateStore) -> None:
    with pytest.raises(ConfigError):
        await store.acquire("no-such-alias")
    assert not store.status.active


def test_the_share_rounds_down_but_keeps_one_slot() -> None:
    limits = {"a": AliasLimits(max_concurrent=100), "b": AliasLimits(max_concurrent=1)}
    shared = local_share(limits, 0.29)
    assert (shared["a"].max_concurrent, shared["b"].max_concurrent) == (29, 1)
    assert local_share({"c": AliasLimits()}, 0.5)["c"] == AliasLimits()


class StatementError(Exception):
    """A store error that may or may not mean the store is out of reach."""

    def __init__(self, lost: bool) -> None:
        super().__init__("lost" if lost else "bad statement")
        self.lost = lost


async def test_only_errors_the_outage_check_accepts_mean_fallback(
    outage: Outage, clock: FakeClock
) -> None:
    store = FallbackRateStore(
        outage,
        LIMITS,
        unreachable=(StatementError,),
        outage=lambda error: isinstance(error, StatementError) and error.lost,
        clock=clock,
    )

    async def failing(lost: bool) -> None:
        raise StatementError(lost)

    outage.inner.acquire = lambda *_: failing(lost=False)  # type: ignore[method-assign]
    with pytest.raises(StatementError):
        await store.acquire("m")
    assert not store.status.active
    outage.inner.acquire = lambda *_: failing(lost=True)  # type: ignore[method-assign]
    assert (await store.acquire("m")).granted
    assert store.status.active


async def test_learned_rates_go_to_the_store_or_stay_local_while_it_is_away(
    store: FallbackRateStore, outage: Outage
) -> None:
    await store.learn_limits("m", 120, None)
    assert (await outage.inner.snapshot("m")).learned_rpm == 120
    outage.down = True
    for _ in range(5):
        await store.acquire("m")
    await store.cut("m", granted_at=0.0)  # NOTE: stated limits hold: a 429 does not guess lower
    await store.learn_limits("m", 60, None)
    assert store.status.active
    assert (await store.snapshot("m")).learned_rpm == 60
    assert (await outage.inner.snapshot("m")).learned_rpm == 120
