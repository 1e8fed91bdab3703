"""Rate-limit decisions driven with simulated time: windows, buckets, debt and AIMD."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.engine.llm import RateLimitInfo
from app.engine.resources.limiter import RateState, TokenBucket

WINDOW_S = 60.0
MARGIN_S = 0.25


def start_when_allowed(state: RateState, tokens: int, now: float) -> float:
    """Wait (in simulated time) exactly as long as ``delay`` says, then start; return the start."""
    wait = state.delay(tokens, now)
    if wait > 0.0:
        now += wait
        assert state.delay(tokens, now) == 0.0, "one wait of the advertised delay must suffice"
    state.start(tokens, now)
    return now


def serve_fifo(state: RateState, arrivals: list[float], tokens: int = 1) -> list[float]:
    """Start every arrival as early as the state allows, first come first served."""
    now, starts = 0.0, list[float]()
    for arrival in arrivals:
        now = start_when_allowed(state, tokens, max(now, arrival))
        starts.append(now)
    return starts


def saturated(state: RateState, until: float, tokens: int | list[int] = 1) -> list[float]:
    """A sender that always has a call ready: start times before ``until``."""
    sizes = tokens if isinstance(tokens, list) else [tokens]
    now, starts = 0.0, list[float]()
    while True:
        size = sizes[len(starts) % len(sizes)]
        now = now + state.delay(size, now)
        if now >= until:
            return starts
        state.start(size, now)
        starts.append(now)


def max_in_window(starts: list[float], window_s: float) -> int:
    """Most starts in any closed window ``[t, t + window_s]``."""
    best, lo = 0, 0
    for hi, started in enumerate(starts):
        while started - starts[lo] > window_s:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def arrivals_from(bursts: list[tuple[float, int]]) -> list[float]:
    times, now = list[float](), 0.0
    for gap, size in bursts:
        now += gap
        times.extend([now] * size)
    return times


bursts_strategy = st.lists(
    st.tuples(st.floats(min_value=0.0, max_value=90.0), st.integers(min_value=1, max_value=200)),
    min_size=1,
    max_size=25,
)


@settings(max_examples=60, deadline=None)
@given(rpm=st.integers(min_value=1, max_value=1200), bursts=bursts_strategy)
def test_no_window_ever_holds_more_than_rpm_starts(
    rpm: int, bursts: list[tuple[float, int]]
) -> None:
    starts = serve_fifo(RateState(rpm=rpm, tpm=None, now=0.0), arrivals_from(bursts))

    assert max_in_window(starts, WINDOW_S) <= rpm
    # the margin: the (rpm+1)-th start after any start is at least window + margin later
    gaps = [later - first for first, later in zip(starts, starts[rpm:], strict=False)]
    assert all(gap >= WINDOW_S + MARGIN_S - 1e-6 for gap in gaps)


@settings(max_examples=25, deadline=None)
@given(rpm=st.integers(min_value=1, max_value=2000))
def test_saturated_sender_gets_at_least_95_percent_of_rpm(rpm: int) -> None:
    starts = saturated(RateState(rpm=rpm, tpm=None, now=0.0), until=600.0)

    assert len(starts) >= 0.95 * rpm * 10
    assert max_in_window(starts, WINDOW_S) <= rpm


def test_requests_are_paced_not_burst() -> None:
    starts = saturated(RateState(rpm=600, tpm=None, now=0.0), until=1.0)

    # one second's burst (10) plus one second of refill, not the whole minute's 600
    assert 15 <= len(starts) <= 20


def test_fractional_window_limit_is_rounded_down() -> None:
    starts = saturated(RateState(rpm=7.5, tpm=None, now=0.0), until=600.0)

    assert max_in_window(starts, WINDOW_S) <= 7


def test_tpm_is_respected_over_every_window() -> None:
    tpm = 60_000  # 1,000 tokens per second; the bucket holds one second's worth
    sizes = [120, 900, 450, 30, 700, 260]
    starts = saturated(RateState(rpm=None, tpm=tpm, now=0.0), until=600.0, tokens=sizes)
    used = [sizes[i % len(sizes)] for i in range(len(starts))]

    worst = max(window_tokens(starts, used, lo, WINDOW_S) for lo in range(len(starts)))
    assert worst <= tpm + tpm / 60
    assert sum(used) >= 0.95 * tpm * 10


def window_tokens(starts: list[float], used: list[int], lo: int, window_s: float) -> int:
    total = 0
    for started, size in zip(starts[lo:], used[lo:], strict=True):
        if started - starts[lo] > window_s:
            break
        total += size
    return total


def test_settle_debt_delays_later_calls() -> None:
    state = RateState(rpm=None, tpm=6_000, now=0.0)  # 100 tokens/s, bucket of 100
    state.start(100, now=0.0)
    assert state.delay(50, now=0.0) == pytest.approx(0.5)

    state.settle(estimated=100, actual=400, now=0.0)

    assert state.delay(50, now=0.0) == pytest.approx(3.5)
    assert state.snapshot(now=0.0)["remaining_tokens"] == -300


def test_settle_refund_frees_budget() -> None:
    state = RateState(rpm=None, tpm=6_000, now=0.0)
    state.start(100, now=0.0)

    state.settle(estimated=100, actual=20, now=0.0)

    assert state.delay(80, now=0.0) == 0.0


def test_oversized_call_waits_for_a_full_bucket_then_runs_into_debt() -> None:
    state = RateState(rpm=None, tpm=6_000, now=0.0)  # capacity 100 tokens
    state.start(40, now=0.0)

    assert state.delay(1_000, now=0.0) == pytest.approx(0.4)  # full bucket, not 10 s
    started = start_when_allowed(state, 1_000, now=0.0)
    assert started == pytest.approx(0.4)
    assert state.delay(1_000, now=started) == pytest.approx(10.0)  # debt of 900 + 100


def test_oversized_calls_keep_flowing_at_tpm() -> None:
    starts = saturated(RateState(rpm=None, tpm=6_000, now=0.0), until=600.0, tokens=1_000)

    assert len(starts) * 1_000 == pytest.approx(6_000 * 10, rel=0.02)


def test_token_bucket_debt_and_capacity() -> None:
    bucket = TokenBucket(rate=10.0, capacity=10.0, now=0.0)
    bucket.take(25, now=0.0)

    assert bucket.delay(1, now=0.0) == pytest.approx(1.6)
    bucket.give(100, now=0.0)
    assert bucket.level == 10.0


def test_many_429s_from_one_epoch_halve_once() -> None:
    state = RateState(rpm=600, tpm=None, now=0.0)
    epochs = [state.start(1, now=i * 0.1) for i in range(64)]

    for epoch in epochs:
        state.on_rate_limited(epoch, now=7.0, retry_after=None)

    assert state.snapshot(now=7.0)["effective_rpm"] == 300.0
    later = state.start(1, now=7.0 + state.delay(1, now=7.0))
    state.on_rate_limited(later, now=8.0, retry_after=None)
    assert state.snapshot(now=8.0)["effective_rpm"] == 150.0


def test_decrease_slows_real_starts() -> None:
    state = RateState(rpm=600, tpm=None, now=0.0)
    state.on_rate_limited(state.start(1, now=0.0), now=0.0, retry_after=None)

    starts = saturated(state, until=60.0)

    assert 280 <= len(starts) <= 301  # 300 per minute, burst spent


@pytest.mark.parametrize(("rpm", "floor"), [(600, 6.0), (50, 1.0), (0.5, 0.5)])
def test_rate_never_drops_below_the_floor(rpm: float, floor: float) -> None:
    state = RateState(rpm=rpm, tpm=None, now=0.0)

    for i in range(30):
        state.on_rate_limited(state.epoch, now=float(i), retry_after=None)

    assert state.snapshot(now=30.0)["effective_rpm"] == floor


def test_recovery_is_additive_and_capped_at_configured_rate() -> None:
    state = RateState(rpm=600, tpm=60_000, now=0.0)
    state.on_rate_limited(state.start(1, now=0.0), now=10.0, retry_after=None)

    succeed_every(state, 0.1, since=10.0, until=15.0)
    halfway = state.snapshot(now=15.0)
    assert halfway["effective_rpm"] == pytest.approx(300 + 600 * 0.05 * 5)
    assert halfway["effective_tpm"] == pytest.approx(30_000 + 60_000 * 0.05 * 5)

    succeed_every(state, 0.1, since=15.0, until=60.0)
    assert state.snapshot(now=60.0)["effective_rpm"] == 600.0
    assert state.snapshot(now=60.0)["effective_tpm"] == 60_000.0


def succeed_every(state: RateState, step: float, since: float, until: float) -> None:
    for i in range(1, round((until - since) / step) + 1):
        state.on_success(now=since + i * step)


def test_one_success_after_idle_time_recovers_one_second_only() -> None:
    state = RateState(rpm=600, tpm=None, now=0.0)
    state.on_rate_limited(state.start(1, now=0.0), now=0.0, retry_after=None)

    state.on_success(now=100.0)

    assert state.snapshot(now=100.0)["effective_rpm"] == pytest.approx(330.0)


def test_retry_after_blocks_every_start() -> None:
    state = RateState(rpm=6_000, tpm=None, now=0.0)
    epoch = state.start(1, now=0.0)

    state.on_rate_limited(epoch, now=5.0, retry_after=7.0)

    assert state.delay(1, now=5.0) == pytest.approx(7.0)
    assert state.delay(1, now=11.9) == pytest.approx(0.1)
    assert state.delay(1, now=12.0) == 0.0
    assert state.snapshot(now=6.0)["blocked_until"] == 12.0


def test_stale_429_still_honours_retry_after_without_decreasing() -> None:
    state = RateState(rpm=600, tpm=None, now=0.0)
    old = state.start(1, now=0.0)
    state.on_rate_limited(old, now=1.0, retry_after=None)

    state.on_rate_limited(old, now=2.0, retry_after=3.0)

    assert state.snapshot(now=2.0)["effective_rpm"] == 300.0
    assert state.delay(1, now=2.0) == pytest.approx(3.0)


def test_headers_with_nothing_remaining_block_until_reset() -> None:
    state = RateState(rpm=None, tpm=None, now=0.0)

    state.on_success(now=1.0, info=RateLimitInfo(remaining_requests=0, reset_requests_s=3.0))
    assert state.delay(1, now=1.0) == pytest.approx(3.0)

    state.on_success(now=10.0, info=RateLimitInfo(remaining_tokens=0, reset_tokens_s=2.0))
    assert state.delay(1, now=10.0) == pytest.approx(2.0)

    state.on_success(now=20.0, info=RateLimitInfo(remaining_requests=5, reset_requests_s=3.0))
    assert state.delay(1, now=20.0) == 0.0
    assert state.snapshot(now=20.0)["server_remaining_requests"] == 5


def test_exhausted_budget_with_a_known_limit_waits_for_one_call_share() -> None:
    """A reset header says when the *whole* budget is back; the next call needs only its share."""
    state = RateState(rpm=None, tpm=None, now=0.0)
    state.start(1_000, now=0.0)
    full = RateLimitInfo(limit_requests=600, remaining_requests=0, reset_requests_s=60.0)
    state.on_success(now=1.0, info=full)
    assert state.delay(1, now=1.0) == pytest.approx(0.1)

    tokens = RateLimitInfo(limit_tokens=100_000, remaining_tokens=0, reset_tokens_s=60.0)
    state.on_success(now=5.0, info=tokens)
    assert state.delay(1, now=5.0) == pytest.approx(0.6)  # 1,000 of 100,000 tokens


def test_429_with_reset_header_and_no_retry_after_blocks() -> None:
    state = RateState(rpm=None, tpm=None, now=0.0)
    epoch = state.start(1, now=0.0)
    info = RateLimitInfo(remaining_requests=0, reset_requests_s=4.0)

    state.on_rate_limited(epoch, now=1.0, retry_after=None, info=info)

    assert state.delay(1, now=1.0) == pytest.approx(4.0)


def test_unlimited_until_first_429_then_half_the_observed_rate() -> None:
    burst = RateState(rpm=None, tpm=None, now=0.0)
    assert all(
        burst.delay(1, now=0.0) == 0.0 and burst.start(1, now=0.0) == 0 for _ in range(1_000)
    )
    state = RateState(rpm=None, tpm=None, now=0.0)
    for i in range(600):  # 20 starts per second for 30 s: about 1,200 per minute
        state.start(1, now=i / 20)

    state.on_rate_limited(0, now=30.0, retry_after=None)

    effective = state.snapshot(now=30.0)["effective_rpm"]
    assert effective is not None
    assert effective == pytest.approx(600.0, rel=0.05)
    assert state.delay(1, now=30.0) == pytest.approx(60.0 / effective)


def test_unlimited_endpoint_recovers_past_the_observed_rate() -> None:
    state = RateState(rpm=None, tpm=None, now=0.0)
    for i in range(600):
        state.start(1, now=i / 20)
    state.on_rate_limited(0, now=30.0, retry_after=None)

    succeed_every(state, 0.1, since=30.0, until=60.0)

    # 600 + 5 % of the observed ~1,200 per second for 30 s: no cap at the observed rate
    assert state.snapshot(now=60.0)["effective_rpm"] == pytest.approx(600.0 + 60.0 * 30, rel=0.05)


def test_snapshot_reports_configuration_and_remaining_budget() -> None:
    state = RateState(rpm=600, tpm=60_000, now=0.0)
    state.start(400, now=0.0)

    snap = state.snapshot(now=0.0)

    assert snap["rpm"] == 600
    assert snap["tpm"] == 60_000
    assert snap["effective_rpm"] == 600
    assert snap["blocked_until"] is None
    assert snap["remaining_requests"] == 9
    assert snap["remaining_tokens"] == 600
