"""A shared GCRA budget never grants more than its per-minute figure in any 60-s window.

The burst counts into the minute: an idle alias spends its burst at once and the steady rate
leaves room for it, with ``ARRIVAL_SPREAD_S`` for the delay between grant and arrival.
"""

from __future__ import annotations

import asyncio

import pytest

from app.engine.clock import FakeClock
from app.engine.resources.shared import ARRIVAL_SPREAD_S, AliasLimits, InMemoryRateStore, Rate
from bench.fake_llm.windows import busiest_window


def grant_times(store: InMemoryRateStore, clock: FakeClock, seconds: float, tokens: int) -> list:
    """Ask for one call every 4 ms for ``seconds``; the store times of the grants."""

    async def ask() -> list[float]:
        granted = []
        while clock.now() < seconds:
            if (await store.acquire("m", 1, tokens)).granted:
                granted.append(clock.now())
            clock.advance(0.004)
        return granted

    return asyncio.run(ask())


@pytest.mark.parametrize("rpm", [1, 7, 60, 600, 6000])
def test_no_60s_window_holds_more_than_rpm_grants(rpm: int) -> None:
    clock = FakeClock()
    store = InMemoryRateStore({"m": AliasLimits(rpm=rpm)}, clock=clock)

    granted = grant_times(store, clock, 150.0, tokens=0)

    assert busiest_window(granted, 60.0) <= rpm
    # arrivals spread by up to ARRIVAL_SPREAD_S (float noise aside) still fit
    assert busiest_window(granted, 60.0 + ARRIVAL_SPREAD_S * 0.99) <= rpm
    assert len(granted) >= 2.4 * rpm * 0.95  # 150 s of demand: the budget is handed out


def test_no_60s_window_holds_more_than_tpm_tokens() -> None:
    clock = FakeClock()
    store = InMemoryRateStore({"m": AliasLimits(tpm=30_000)}, clock=clock)

    granted = grant_times(store, clock, 130.0, tokens=160)

    assert 160 * busiest_window(granted, 60.0) <= 30_000
    assert 160 * busiest_window(granted, 60.0) >= 0.95 * 30_000


def test_the_burst_is_what_an_idle_alias_spends_at_once() -> None:
    rate = Rate.per_minute(600, burst_s=1.0)
    clock = FakeClock()
    store = InMemoryRateStore({"m": AliasLimits(rpm=600)}, clock=clock)

    first = [asyncio.run(store.acquire("m")).granted for _ in range(12)]

    assert first == [True] * 10 + [False] * 2
    assert rate.capacity == 10.0
