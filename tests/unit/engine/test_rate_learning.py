"""The learned rate of the shared limiter: cut on 429s, stated limits, probe, idle decay."""

from __future__ import annotations

import asyncio

import pytest

from app.engine.clock import FakeClock
from app.engine.resources.learning import (
    Learned,
    LearningPolicy,
    cut,
    granted,
    grants_per_minute,
    learned_limits,
    stated,
)
from app.engine.resources.shared import AliasLimits, InMemoryRateStore

LIMITS = AliasLimits(rpm=600)
POLICY = LearningPolicy(cut=0.9, probe_per_min=0.05, decay_s=60.0)


def busy(state: Learned, start: float, count: int, every_s: float) -> Learned:
    """``count`` grants from ``start``, ``every_s`` apart, each leaving the budget in use."""
    for i in range(count):
        now = start + i * every_s
        state = granted(state, now, tat=now + every_s)
    return state


def test_grants_of_the_last_minute_are_counted_across_buckets() -> None:
    state = busy(Learned(), 0.0, 120, 0.5)  # 60 s at 120 rpm
    assert grants_per_minute(state, 60.0) == pytest.approx(120, abs=2)
    state = busy(state, 60.0, 60, 0.5)  # 30 s more
    assert grants_per_minute(state, 90.0) == pytest.approx(120, abs=3)
    assert grants_per_minute(state, 300.0) == 0.0


def test_a_429_cuts_to_a_share_of_what_the_last_minute_granted() -> None:
    state = busy(Learned(), 0.0, 125, 0.1)  # 12.5 s at 600 rpm before the first 429
    after = cut(state, LIMITS, granted_at=12.0, now=12.5, policy=POLICY)
    assert after is not None
    assert after.rpm == pytest.approx(0.9 * 125)
    assert learned_limits(LIMITS, after, 12.5, POLICY).rpm == pytest.approx(112.5)


def test_a_429_of_a_call_granted_before_the_latest_cut_cuts_nothing() -> None:
    state = busy(Learned(), 0.0, 125, 0.1)
    after = cut(state, LIMITS, granted_at=12.0, now=12.5, policy=POLICY)
    assert after is not None
    assert cut(after, LIMITS, granted_at=12.1, now=12.6, policy=POLICY) is None
    assert cut(after, LIMITS, granted_at=13.0, now=13.1, policy=POLICY) is not None


def test_stated_limits_are_the_learned_rate_and_429s_do_not_guess_lower() -> None:
    state = stated(Learned(), rpm=120, tpm=40_000, now=5.0)
    assert state is not None
    limits = learned_limits(AliasLimits(rpm=600, tpm=100_000), state, 5.0, POLICY)
    assert (limits.rpm, limits.tpm) == (120, 40_000)
    assert cut(state, LIMITS, granted_at=6.0, now=6.0, policy=POLICY) is None
    assert stated(state, rpm=120, tpm=40_000, now=7.0) is None  # nothing new: no write


def test_a_stated_limit_above_the_configured_one_does_not_raise_it() -> None:
    state = stated(Learned(), rpm=10_000, tpm=None, now=0.0)
    assert state is not None
    assert learned_limits(LIMITS, state, 1.0, POLICY).rpm == 600


def test_while_busy_the_learned_rate_probes_slowly_upwards() -> None:
    start = cut(busy(Learned(), 0.0, 125, 0.1), LIMITS, 12.0, 12.5, POLICY)
    assert start is not None
    state = busy(start, 12.5, 240, 0.5)  # two busy minutes, the budget always in use
    rate = learned_limits(LIMITS, state, 12.5 + 120, POLICY).rpm
    assert rate == pytest.approx(112.5 * 1.1, rel=0.01)


def test_idle_time_decays_the_learned_rate_back_to_the_configured_one() -> None:
    state = cut(busy(Learned(), 0.0, 125, 0.1), LIMITS, 12.0, 12.5, POLICY)
    assert state is not None
    at = state.tat
    one_tau = learned_limits(LIMITS, state, at + 60, POLICY).rpm
    assert one_tau is not None
    assert 400 < one_tau < 440  # 600 - (600 - ~113) / e
    assert learned_limits(LIMITS, state, at + 300, POLICY).rpm == pytest.approx(600, rel=0.01)


def test_a_429_pause_is_not_idle_time() -> None:
    state = cut(busy(Learned(), 0.0, 125, 0.1), LIMITS, 12.0, 12.5, POLICY)
    assert state is not None
    paused = Learned(**{**_fields(state), "blocked_until": 60.0})
    # 47.5 s of pause: not decayed (that would be about 300), only probed up (by 4%)
    assert learned_limits(LIMITS, paused, 60.0, POLICY).rpm == pytest.approx(117, rel=0.01)


def _fields(state: Learned) -> dict[str, object]:
    return {name: getattr(state, name) for name in Learned.__slots__}


def test_the_in_memory_store_shares_the_cut_and_shows_it() -> None:
    clock = FakeClock()
    store = InMemoryRateStore({"m": LIMITS}, clock=clock, learning=POLICY)

    async def scenario() -> tuple[float | None, float | None, int]:
        granted_at = 0.0
        for _ in range(30):
            admission = await store.acquire("m")
            if admission.granted:
                granted_at = admission.at_s
            clock.advance(0.1)
        await store.cut("m", granted_at)
        learned = (await store.snapshot("m")).learned_rpm
        clock.advance(400)
        forgotten = (await store.snapshot("m")).learned_rpm
        grants = 0
        for _ in range(100):  # 10 s after the idle time: the configured 600 rpm again
            grants += (await store.acquire("m")).granted
            clock.advance(0.1)
        return learned, forgotten, grants

    learned, forgotten, grants = asyncio.run(scenario())
    assert learned is not None
    assert learned < 600
    assert forgotten is None
    assert grants >= 95
