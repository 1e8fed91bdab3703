"""Rate-limit decisions for one endpoint: token buckets, a sliding window and AIMD (DESIGN §5).

Everything here is pure: no asyncio, no clock. Each method takes ``now`` (monotonic seconds) and
callers must pass non-decreasing values. :class:`~app.engine.resources.gate.EndpointGate` drives
a :class:`RateState` from a real clock; tests drive it with simulated time.

>>> state = RateState(rpm=60, tpm=None, now=0.0)
>>> state.delay(1, now=0.0)
0.0
>>> state.start(1, now=0.0)
0
>>> round(state.delay(1, now=0.0), 3)
1.0
"""

from __future__ import annotations

import math
from collections import deque

from app.engine.errors import ConfigError
from app.engine.llm import RateLimitInfo

# NOTE: a computed wait this small is float noise; treating it as "now" keeps simulated and
# timer-driven callers from re-checking in an endless series of nanosecond waits.
_EPSILON_S = 1e-9
# NOTE: a success credits at most this much time towards recovery, so an endpoint that was idle
# for minutes does not jump back to full speed on one success.
_MAX_CREDIT_S = 1.0


class TokenBucket:
    """Budget refilled continuously at ``rate`` per second, holding at most ``capacity``.

    The level may go negative (debt): a call larger than the capacity waits for a full bucket and
    then runs, and later calls wait until the debt is paid back.

    >>> bucket = TokenBucket(rate=10.0, capacity=10.0, now=0.0)
    >>> bucket.take(25, now=0.0); bucket.delay(1, now=0.0)
    1.6
    """

    __slots__ = ("capacity", "level", "rate", "updated")

    def __init__(self, *, rate: float, capacity: float, now: float, level: float | None = None):
        self.rate = rate
        self.capacity = capacity
        self.level = capacity if level is None else min(level, capacity)
        self.updated = now

    def refill(self, now: float) -> None:
        """Add what accrued since the last update."""
        if now > self.updated:
            self.level = min(self.capacity, self.level + (now - self.updated) * self.rate)
            self.updated = now

    def delay(self, amount: float, now: float) -> float:
        """Seconds until ``amount`` may be taken (a full bucket suffices for oversized amounts)."""
        self.refill(now)
        missing = min(amount, self.capacity) - self.level
        return missing / self.rate if missing > 0.0 else 0.0

    def take(self, amount: float, now: float) -> None:
        """Spend ``amount``, going into debt if needed."""
        self.refill(now)
        self.level -= amount

    def give(self, amount: float, now: float) -> None:
        """Return ``amount`` (negative: charge more), never above capacity."""
        self.refill(now)
        self.level = min(self.capacity, self.level + amount)

    def set_rate(self, rate: float, capacity: float, now: float) -> None:
        """Change the refill rate and capacity from ``now`` on."""
        self.refill(now)
        self.rate = rate
        self.capacity = capacity
        self.level = min(self.level, capacity)


class SlidingWindow:
    """A log of start times: at most ``limit`` starts in any ``window_s + margin_s`` span.

    >>> window = SlidingWindow(limit=2, window_s=60.0, margin_s=0.25)
    >>> window.record(0.0); window.record(1.0); window.delay(now=2.0)
    58.25
    """

    __slots__ = ("_log", "limit", "margin_s", "window_s")

    def __init__(self, *, limit: int, window_s: float, margin_s: float) -> None:
        self.limit = limit
        self.window_s = window_s
        self.margin_s = margin_s
        self._log: deque[float] = deque(maxlen=limit)

    def delay(self, now: float) -> float:
        """Seconds until one more start keeps every window within the limit."""
        if len(self._log) < self.limit:
            return 0.0
        return max(0.0, self._log[0] + self.window_s + self.margin_s - now)

    def record(self, now: float) -> None:
        """Log a start at ``now``."""
        self._log.append(now)

    def count(self, now: float) -> int:
        """Starts in the last ``window_s`` seconds."""
        cutoff = now - self.window_s
        n = 0
        for started in reversed(self._log):
            if started <= cutoff:
                break
            n += 1
        return n


class RateMeter:
    """Recent event rate with exponential forgetting (time constant ``tau_s``).

    >>> meter = RateMeter(tau_s=10.0)
    >>> for i in range(300): meter.record(i / 10)
    >>> 590 < meter.per_minute(30.0) < 610
    True
    """

    __slots__ = ("_first", "_updated", "_weight", "tau_s")

    def __init__(self, tau_s: float = 10.0) -> None:
        self.tau_s = tau_s
        self._weight = 0.0
        self._updated = 0.0
        self._first: float | None = None

    def _decay(self, now: float) -> None:
        if now > self._updated:
            self._weight *= math.exp((self._updated - now) / self.tau_s)
            self._updated = now

    def record(self, now: float) -> None:
        """Count one event at ``now``."""
        if self._first is None:
            self._first = self._updated = now
        self._decay(now)
        self._weight += 1.0

    def per_minute(self, now: float) -> float:
        """Estimated events per minute; young meters are corrected for their short history."""
        if self._first is None:
            return 0.0
        self._decay(now)
        elapsed = max(now - self._first, 1.0)
        horizon = self.tau_s * -math.expm1(-elapsed / self.tau_s)
        return 60.0 * self._weight / horizon


class AdaptiveRate:
    """A per-minute rate that drops multiplicatively and recovers additively (AIMD).

    ``configured=None`` means unlimited until the first :meth:`decrease`, which then starts
    from the observed rate. The additive step is ``recovery_per_s`` of the configured rate (or of
    the observed rate at the first decrease) per second; only a configured rate caps recovery.

    >>> rate = AdaptiveRate(600.0)
    >>> rate.decrease(observed=0.0); rate.current
    300.0
    >>> rate.recover(seconds=4.0); rate.current
    420.0
    """

    __slots__ = ("_factor", "_recovery", "_step_basis", "configured", "current", "floor")

    def __init__(
        self,
        configured: float | None,
        *,
        factor: float = 0.5,
        recovery_per_s: float = 0.05,
        floor_fraction: float = 0.01,
        min_rate: float = 1.0,
    ) -> None:
        self.configured = configured
        self.current = configured
        self.floor = (
            min_rate if configured is None else _floor(configured, floor_fraction, min_rate)
        )
        self._factor = factor
        self._recovery = recovery_per_s
        self._step_basis = configured

    @property
    def reduced(self) -> bool:
        """True while below the configured rate (or adapted from unlimited)."""
        return self.current is not None and (
            self.configured is None or self.current < self.configured
        )

    def decrease(self, observed: float) -> None:
        """Multiply by the factor; an unlimited rate starts from ``observed`` (per minute)."""
        if self.current is None:
            self.current = max(observed, self.floor)
            self._step_basis = self.current
        self.current = max(self.floor, self.current * self._factor)

    def recover(self, seconds: float) -> None:
        """Add ``seconds`` worth of additive recovery, capped at the configured rate."""
        if self.current is None or self._step_basis is None:
            return
        raised = self.current + self._step_basis * self._recovery * seconds
        self.current = raised if self.configured is None else min(raised, self.configured)


def _floor(configured: float, fraction: float, min_rate: float) -> float:
    return min(configured, max(min_rate, configured * fraction))


class RateState:
    """Request and token budgets of one endpoint, adapting to 429s (pure; caller passes now).

    Requests (``rpm``) are paced by a token bucket at ``rpm / 60`` per second holding about one
    second's worth (at least 1), and capped by a sliding log: no ``window_s`` window ever holds
    more than ``rpm * window_s / 60`` starts, with ``margin_s`` extra spacing so that network
    jitter cannot push more arrivals than that into one server-side window.

    Tokens (``tpm``) are a bucket at ``tpm / 60`` per second holding one second's worth. A call
    reserves its estimate at start and :meth:`settle` books the difference once usage is known;
    the balance may go negative (later calls wait). A call above the capacity waits for a full
    bucket, then runs into debt.

    On a 429 (:meth:`on_rate_limited`) starts are blocked until ``retry_after`` (or a header reset
    time when nothing remains), and the effective request rate, plus the token rate when ``tpm``
    is set, is halved, at most once per epoch: a 429 from a call started before the latest
    decrease does not decrease again. A decrease also spends the request burst; the sliding
    window keeps the configured cap. Rates never go below 1 % of the configured rate, and the
    request rate not below 1 per minute (or the configured rate, if lower). Each success credits
    the time since the previous success or decrease, not counting blocked time and at most one
    second, and recovers 5 % of the configured rate per credited second, up to that rate.

    With ``adaptive=False`` (a shared store learns the rate instead) a 429 only blocks.

    Without ``rpm`` the endpoint is unlimited until its first 429; the rate then starts at half
    the start rate observed over the last ~10 s and recovers by 5 % of that observed rate per
    credited second, without a cap (it probes upwards until the next 429). Without ``tpm`` tokens
    are never limited; the request rate carries the adaptation.

    >>> state = RateState(rpm=600, tpm=None, now=0.0)
    >>> epoch = state.start(1, now=0.0)
    >>> state.on_rate_limited(epoch, now=1.0, retry_after=2.0)
    >>> state.delay(1, now=1.0), state.snapshot(now=1.0)["effective_rpm"]
    (2.0, 300.0)
    """

    def __init__(
        self,
        *,
        rpm: float | None,
        tpm: float | None,
        now: float,
        window_s: float = 60.0,
        margin_s: float = 0.25,
        adaptive: bool = True,
    ) -> None:
        _check_limits(rpm, tpm, window_s, margin_s)
        self.adaptive = adaptive
        self.rpm = rpm
        self.tpm = tpm
        self._requests_rate = AdaptiveRate(rpm)
        self._tokens_rate = AdaptiveRate(tpm) if tpm is not None else None
        self._requests = _bucket_for(rpm, now)
        self._tokens = _bucket_for(tpm, now)
        self._window = _window_for(rpm, window_s, margin_s)
        self._meter = RateMeter() if rpm is None else None
        self._blocked_until = now
        self._epoch = 0
        self._credit_mark = now
        self._server_remaining_requests: int | None = None
        self._server_remaining_tokens: int | None = None
        self._last_tokens = 1

    @property
    def epoch(self) -> int:
        """Number of rate decreases so far."""
        return self._epoch

    def delay(self, tokens: int, now: float) -> float:
        """Seconds until a call needing ``tokens`` may start (0.0 = now)."""
        wait = self._blocked_until - now
        if self._requests is not None:
            wait = max(wait, self._requests.delay(1.0, now))
        if self._window is not None:
            wait = max(wait, self._window.delay(now))
        if self._tokens is not None:
            wait = max(wait, self._tokens.delay(tokens, now))
        return wait if wait > _EPSILON_S else 0.0

    def start(self, tokens: int, now: float) -> int:
        """Record a start (takes budget); returns the AIMD epoch at start."""
        if self._requests is not None:
            self._requests.take(1.0, now)
        if self._window is not None:
            self._window.record(now)
        if self._tokens is not None:
            self._tokens.take(tokens, now)
        self._last_tokens = tokens
        if self._meter is not None:
            self._meter.record(now)
        return self._epoch

    def settle(self, estimated: int, actual: int, now: float) -> None:
        """Correct token accounting once real usage is known (``actual`` may exceed the bucket)."""
        if self._tokens is not None:
            self._tokens.give(estimated - actual, now)

    def on_success(self, now: float, info: RateLimitInfo | None = None) -> None:
        """A call succeeded: recover the rate and honour exhausted-budget headers."""
        if info is not None:
            self._note_headers(info, now)
        if self._requests_rate.reduced or (self._tokens_rate and self._tokens_rate.reduced):
            self._recover(now)

    def on_rate_limited(
        self,
        epoch: int,
        now: float,
        retry_after: float | None,
        info: RateLimitInfo | None = None,
    ) -> None:
        """A call started in ``epoch`` got a 429: block for ``retry_after`` and slow down once."""
        if info is not None:
            self._note_headers(info, now)
        if retry_after is not None and retry_after > 0.0:
            self._block_until(now + retry_after)
        if self.adaptive and epoch >= self._epoch:
            self._decrease(now)

    def snapshot(self, now: float) -> dict[str, float | None]:
        """Configured and effective rates, blocking and remaining budgets (for metrics and API).

        Rates are per minute; ``blocked_until`` is in the caller's clock (``None`` when not
        blocked), ``blocked_for_s`` is relative. ``remaining_requests`` is how many calls could
        start right now, ``remaining_tokens`` the token balance (negative: debt); both ``None``
        when unlimited. ``server_remaining_*`` echo the provider's last headers.
        """
        blocked = self._blocked_until > now
        return {
            "rpm": self.rpm,
            "tpm": self.tpm,
            "effective_rpm": self._requests_rate.current,
            "effective_tpm": self._tokens_rate.current if self._tokens_rate else None,
            "blocked_until": self._blocked_until if blocked else None,
            "blocked_for_s": self._blocked_until - now if blocked else 0.0,
            "remaining_requests": self._remaining_requests(now, blocked),
            "remaining_tokens": self._remaining_tokens(now),
            "server_remaining_requests": self._server_remaining_requests,
            "server_remaining_tokens": self._server_remaining_tokens,
            "epoch": self._epoch,
        }

    def _remaining_requests(self, now: float, blocked: bool) -> float | None:
        if self._requests is None:
            return None
        if blocked:
            return 0.0
        self._requests.refill(now)
        left = max(0.0, math.floor(self._requests.level + _EPSILON_S))
        if self._window is not None:
            left = min(left, self._window.limit - self._window.count(now))
        return float(left)

    def _remaining_tokens(self, now: float) -> float | None:
        if self._tokens is None:
            return None
        self._tokens.refill(now)
        return float(math.floor(self._tokens.level + _EPSILON_S))

    def _note_headers(self, info: RateLimitInfo, now: float) -> None:
        self._server_remaining_requests = info.remaining_requests
        self._server_remaining_tokens = info.remaining_tokens
        if info.remaining_requests == 0 and info.reset_requests_s:
            wait = _replenish_s(info.reset_requests_s, info.limit_requests, 1)
            self._block_until(now + wait)
        if info.remaining_tokens == 0 and info.reset_tokens_s:
            wait = _replenish_s(info.reset_tokens_s, info.limit_tokens, self._last_tokens)
            self._block_until(now + wait)

    def _block_until(self, until: float) -> None:
        self._blocked_until = max(self._blocked_until, until)

    def _decrease(self, now: float) -> None:
        self._epoch += 1
        observed = self._meter.per_minute(now) if self._meter is not None else 0.0
        self._meter = None  # NOTE: only the first decrease of an unlimited endpoint needs it
        self._requests_rate.decrease(observed)
        if self._tokens_rate is not None:
            self._tokens_rate.decrease(0.0)
        self._apply_rates(now)
        if self._requests is not None:
            # NOTE: the burst allowance is what overran the server; spend it.
            self._requests.level = min(self._requests.level, 0.0)
        self._credit_mark = now

    def _recover(self, now: float) -> None:
        credit = min(now - max(self._credit_mark, self._blocked_until), _MAX_CREDIT_S)
        self._credit_mark = max(self._credit_mark, now)
        if credit <= 0.0:
            return
        self._requests_rate.recover(credit)
        if self._tokens_rate is not None:
            self._tokens_rate.recover(credit)
        self._apply_rates(now)

    def _apply_rates(self, now: float) -> None:
        rpm = self._requests_rate.current
        if rpm is not None:
            self._requests = _retuned(self._requests, rpm, now)
        if self._tokens_rate is not None and self._tokens_rate.current is not None:
            self._tokens = _retuned(self._tokens, self._tokens_rate.current, now)


def _replenish_s(reset_s: float, limit: int | None, needed: int) -> float:
    """How long until ``needed`` units are back, from a reset-to-full time.

    Providers report when the whole budget is restored; with nothing left, the next call only
    needs its own share, which comes back after ``reset_s * needed / limit``.
    """
    if not limit:
        return reset_s
    return reset_s * min(1.0, max(needed, 1) / limit)


def _check_limits(rpm: float | None, tpm: float | None, window_s: float, margin_s: float) -> None:
    for name, value in (("rpm", rpm), ("tpm", tpm)):
        if value is not None and not value > 0:
            raise ConfigError(f"{name} must be positive or None, got {value}")
    if not window_s > 0 or not margin_s >= 0:
        raise ConfigError(f"need window_s > 0 and margin_s >= 0, got {window_s} and {margin_s}")


def _capacity(per_minute: float) -> float:
    return max(1.0, per_minute / 60.0)


def _bucket_for(per_minute: float | None, now: float) -> TokenBucket | None:
    if per_minute is None:
        return None
    return TokenBucket(rate=per_minute / 60.0, capacity=_capacity(per_minute), now=now)


def _retuned(bucket: TokenBucket | None, per_minute: float, now: float) -> TokenBucket:
    if bucket is None:
        # NOTE: a bucket born from a 429 starts empty: the server just said "too much".
        return TokenBucket(rate=per_minute / 60.0, capacity=_capacity(per_minute), now=now, level=0)
    bucket.set_rate(per_minute / 60.0, _capacity(per_minute), now)
    return bucket


def _window_for(rpm: float | None, window_s: float, margin_s: float) -> SlidingWindow | None:
    if rpm is None:
        return None
    limit = max(1, math.floor(rpm * window_s / 60.0 + _EPSILON_S))
    return SlidingWindow(limit=limit, window_s=window_s, margin_s=margin_s)
