"""One rate budget per alias shared by every process: the store interface and GCRA (DESIGN §5).

A :class:`SharedRateStore` keeps, per alias, one GCRA state per resource (requests and tokens:
the theoretical arrival time, TAT), a ``blocked_until`` time and concurrency leases, all read
against the store's own clock so that client clocks never matter. :meth:`~SharedRateStore.acquire`
checks and debits requests and tokens together: a call refused for tokens spends no request
budget, and a refused call spends nothing. :class:`InMemoryRateStore` is the single-process
implementation; the service has Redis and Postgres ones.

>>> import asyncio
>>> from app.engine.clock import FakeClock
>>> store = InMemoryRateStore({"fast": AliasLimits(rpm=60)}, clock=FakeClock())
>>> async def twice():
...     return [(await store.acquire("fast")).granted for _ in range(2)]
>>> asyncio.run(twice())
[True, False]
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from typing import Protocol

from app.engine.clock import Clock, MonotonicClock
from app.engine.errors import ConfigError
from app.engine.resources.config import ResourceConfig
from app.engine.resources.learning import (
    NOTHING,
    Learned,
    LearningPolicy,
    cut,
    granted,
    learned_limits,
    learned_rates,
    repaced_tat,
    stated,
)
from app.engine.resources.store_state import StoreSnapshot, budget_state, leases_by_holder

# NOTE: a wait this small is float noise (TATs are sums of many intervals).
EPSILON_S = 1e-9
# NOTE: a grant reaches the provider a little later, by a delay that varies (network, event
# loops, a busy host); a minute of grants is paced as if this much longer, so that no minute
# of arrivals holds more than the budget either.
ARRIVAL_SPREAD_S = 0.5
# NOTE: a refused slot counts as wanted this long: a waiter asks again every few tens of ms,
# and a holder hears of it from its next store decision (about every second while it runs).
WANTED_S = 1.0


@dataclass(frozen=True, slots=True)
class Admission:
    """The store's answer: granted or not, how long until it could be, and the store time.

    ``limited`` is False when, as the store decided, the alias has no rate in force (none
    configured, none learned): then a process may pass calls for a moment without asking
    again (:mod:`app.engine.resources.slices`). ``contended`` is True when a process was
    refused one of the alias's concurrency slots in the last ``WANTED_S``: a process then
    gives its slot leases back as their hold ends, rather than keeping them.
    """

    granted: bool
    retry_after_s: float = 0.0
    at_s: float = 0.0
    limited: bool = True
    contended: bool = False


@dataclass(frozen=True, slots=True)
class Rate:
    """A GCRA budget: ``interval_s`` per unit, at most ``capacity`` units at once.

    >>> rate = Rate.per_minute(600, burst_s=1.0)
    >>> rate.capacity, round(60 / rate.interval_s, 1)  # the steady rate leaves room for the burst
    (10.0, 586.1)
    """

    interval_s: float
    capacity: float

    @classmethod
    def per_minute(cls, per_minute: float, burst_s: float) -> Rate:
        """``per_minute`` units, with about ``burst_s`` seconds' worth (at least 1) at once,
        and never more than ``per_minute`` in any 60 s (half-open) window, burst included.

        GCRA grants fewer than ``capacity + window / interval_s`` in a window, so the steady
        rate is what the minute leaves after the burst (``ARRIVAL_SPREAD_S`` more window for
        the arrivals at the provider).
        """
        capacity = max(1.0, min(per_minute, per_minute * burst_s / 60.0))
        interval_s = (60.0 + ARRIVAL_SPREAD_S) / (per_minute + 1.0 - capacity)
        return cls(interval_s=interval_s, capacity=capacity)


UNLIMITED = Rate(interval_s=0.0, capacity=0.0)


@dataclass(frozen=True, slots=True)
class AliasLimits:
    """What one alias may use across all processes; ``None`` = unlimited.

    ``burst_s`` is how many seconds' worth of budget an idle alias may spend at once.
    """

    rpm: float | None = None
    tpm: float | None = None
    max_concurrent: int | None = None
    burst_s: float = 1.0

    @property
    def requests(self) -> Rate:
        """The request budget as a GCRA rate."""
        return UNLIMITED if self.rpm is None else Rate.per_minute(self.rpm, self.burst_s)

    @property
    def tokens(self) -> Rate:
        """The token budget as a GCRA rate."""
        return UNLIMITED if self.tpm is None else Rate.per_minute(self.tpm, self.burst_s)


def limits_of(config: ResourceConfig) -> dict[str, AliasLimits]:
    """Each alias's shared limits from a resource configuration."""
    return {
        alias: AliasLimits(rpm=ep.rpm, tpm=ep.tpm, max_concurrent=ep.max_concurrent)
        for alias, ep in config.endpoints.items()
    }


def rated(limits: AliasLimits) -> bool:
    """Whether ``limits`` hold a request or token rate (``Admission.limited``).

    >>> rated(AliasLimits(max_concurrent=8)), rated(AliasLimits(rpm=60))
    (False, True)
    """
    return limits.rpm is not None or limits.tpm is not None


def wanted(slots_wanted_at: float, now: float) -> bool:
    """Whether a slot refused at ``slots_wanted_at`` still counts as wanted at ``now``.

    >>> wanted(10.0, 10.5), wanted(10.0, 12.0)
    (True, False)
    """
    return now - slots_wanted_at < WANTED_S


def gcra(tat: float, now: float, rate: Rate, cost: float) -> tuple[float, float]:
    """The TAT after spending ``cost`` and the wait before that is allowed (0.0 = now).

    A cost above the capacity waits for a full budget and then goes into debt, so it is never
    refused forever. The Redis script and the Postgres statement compute the same thing.

    >>> gcra(0.0, 10.0, Rate(interval_s=1.0, capacity=2.0), 1)
    (11.0, 0.0)
    >>> gcra(12.0, 10.0, Rate(interval_s=1.0, capacity=2.0), 1)
    (13.0, 1.0)
    """
    base = max(tat, now)
    wait = base + (min(cost, rate.capacity) - rate.capacity) * rate.interval_s - now
    return base + cost * rate.interval_s, max(0.0, wait)


def refunded(tat: float, now: float, rate: Rate, tokens: float) -> float:
    """The TAT after giving back ``tokens`` (negative: charging more), never below ``now``."""
    if tokens >= 0:
        return max(tat - tokens * rate.interval_s, now)
    return max(tat, now) - tokens * rate.interval_s


class SharedRateStore(Protocol):
    """Rate budgets and concurrency leases per alias, one for every process using the store.

    Times are the store's clock. ``acquire`` debits nothing when it refuses. Leases expire
    ``ttl_s`` after their last ``acquire_slot`` by the same owner (which renews them).
    """

    async def acquire(self, alias: str, requests: int = 1, tokens: int = 0) -> Admission:
        """Take ``requests`` and ``tokens`` together, or nothing, with the wait until possible."""
        ...

    async def refund(self, alias: str, tokens: int) -> None:
        """Give back ``tokens`` reserved but not used (negative: charge the excess)."""
        ...

    async def acquire_slot(self, alias: str, owner: str, ttl_s: float) -> bool:
        """Take or renew ``owner``'s concurrency lease; False when every slot is held (the
        alias then counts as contended for ``WANTED_S``, see :class:`Admission`)."""
        ...

    async def renew_slots(self, alias: str, owners: Collection[str], ttl_s: float) -> set[str]:
        """Renew each of ``owners``' live leases for ``ttl_s``, in one operation; returns the
        owners that hold none (lapsed, or given back meanwhile), which it does not take."""
        ...

    async def release_slot(self, alias: str, owner: str) -> None:
        """Give ``owner``'s lease back (no error if it already expired)."""
        ...

    async def block(self, alias: str, seconds: float) -> None:
        """Refuse every acquire for ``seconds`` from now (extends, never shortens)."""
        ...

    async def blocked_for(self, alias: str) -> float:
        """Seconds until the alias is no longer blocked (0.0 = not blocked)."""
        ...

    async def snapshot(self, alias: str) -> StoreSnapshot:
        """The alias's budgets, pause and leases by process, read without changing them."""
        ...

    async def cut(self, alias: str, granted_at: float) -> None:
        """A call granted at store time ``granted_at`` got a 429: lower the learned request
        rate for every process (see :func:`app.engine.resources.learning.cut`)."""
        ...

    async def learn_limits(self, alias: str, rpm: int | None, tpm: int | None) -> None:
        """The provider stated its limits per minute: they become the learned rates."""
        ...


def limits_for(limits: Mapping[str, AliasLimits], alias: str) -> AliasLimits:
    """The limits of a known alias (a store refuses to guess limits it was not given)."""
    found = limits.get(alias)
    if found is None:
        raise ConfigError(f"no shared limits for endpoint alias {alias!r}")
    return found


@dataclass(slots=True)
class AliasState:
    """One alias's whole state, with the rules every decision follows at store time ``now``.

    The in-memory store keeps one per alias; the SQLite store reads one from its database,
    applies a rule and writes it back, in one transaction.
    """

    requests_tat: float = 0.0
    tokens_tat: float = 0.0
    blocked_until: float = 0.0
    leases: dict[str, float] = field(default_factory=dict)
    learned: Learned = NOTHING
    slots_wanted_at: float = 0.0  # when a slot was last refused

    def admit(
        self, limits: AliasLimits, now: float, policy: LearningPolicy, requests: int, tokens: int
    ) -> Admission:
        """Debit ``requests`` and ``tokens`` together if both budgets allow, else nothing."""
        rates = learned_limits(limits, self.mirrored(), now, policy)
        requests_tat, requests_wait = gcra(self.requests_tat, now, rates.requests, requests)
        tokens_tat, tokens_wait = gcra(self.tokens_tat, now, rates.tokens, tokens)
        wait = max(self.blocked_until - now, requests_wait, tokens_wait)
        contended = wanted(self.slots_wanted_at, now)
        if wait > EPSILON_S:
            return Admission(False, retry_after_s=wait, at_s=now, contended=contended)
        self.learned = granted(self.mirrored(), now, requests_tat, requests)
        self.requests_tat, self.tokens_tat = requests_tat, tokens_tat
        return Admission(True, at_s=now, limited=rated(rates), contended=contended)

    def refund(self, limits: AliasLimits, now: float, policy: LearningPolicy, tokens: int) -> None:
        """Give back ``tokens`` (negative: charge them) on the token budget."""
        rate = learned_limits(limits, self.mirrored(), now, policy).tokens
        self.tokens_tat = refunded(self.tokens_tat, now, rate, tokens)

    def lease(self, cap: int | None, owner: str, now: float, ttl_s: float) -> bool:
        """Take or renew ``owner``'s lease until ``now + ttl_s``; False when ``cap`` are held."""
        self.leases = {held: until for held, until in self.leases.items() if until > now}
        if owner not in self.leases and cap is not None and len(self.leases) >= cap:
            self.slots_wanted_at = now
            return False
        self.leases[owner] = now + ttl_s
        return True

    def renew(self, owners: Collection[str], now: float, ttl_s: float) -> set[str]:
        """Renew the live leases of ``owners`` until ``now + ttl_s``; the owners of none."""
        missing = set()
        for owner in owners:
            if self.leases.get(owner, 0.0) > now:
                self.leases[owner] = now + ttl_s
            else:
                missing.add(owner)
        return missing

    def block(self, now: float, seconds: float) -> None:
        """Refuse every admission until ``now + seconds`` (never shortens)."""
        self.blocked_until = max(self.blocked_until, now + seconds)

    def cut(
        self, limits: AliasLimits, granted_at: float, now: float, policy: LearningPolicy
    ) -> None:
        """A call granted at ``granted_at`` got a 429: lower the learned request rate."""
        found = cut(self.mirrored(), limits, granted_at, now, policy)
        self.learned = self.learned if found is None else found

    def learn(
        self,
        limits: AliasLimits,
        stated_rates: tuple[int | None, int | None],
        now: float,
        policy: LearningPolicy,
    ) -> None:
        """The provider stated its (rpm, tpm): they become the learned rates."""
        found = stated(self.learned, *stated_rates, now)
        if found is None:
            return
        self.learned = found
        requests = learned_limits(limits, found, now, policy).requests
        self.requests_tat = max(self.requests_tat, repaced_tat(found, requests, now))

    def snapshot(self, limits: AliasLimits, now: float, policy: LearningPolicy) -> StoreSnapshot:
        """The budgets, pause and leases by process at ``now``, changing nothing."""
        learned = self.mirrored()
        in_force = learned_limits(limits, learned, now, policy)
        learned_rpm, learned_tpm = learned_rates(limits, learned, now, policy)
        live = [owner for owner, until in self.leases.items() if until > now]
        return StoreSnapshot(
            requests=budget_state(in_force.requests, self.requests_tat, now, in_force.rpm),
            tokens=budget_state(in_force.tokens, self.tokens_tat, now, in_force.tpm),
            max_concurrent=in_force.max_concurrent,
            blocked_for_s=max(0.0, self.blocked_until - now),
            leases=leases_by_holder(live),
            learned_rpm=learned_rpm,
            learned_tpm=learned_tpm,
        )

    def mirrored(self) -> Learned:
        """The learned state with the TAT and pause it is read with."""
        learned = self.learned
        if (learned.tat, learned.blocked_until) == (self.requests_tat, self.blocked_until):
            return learned
        return replace(learned, tat=self.requests_tat, blocked_until=self.blocked_until)


class InMemoryRateStore:
    """:class:`SharedRateStore` for one process (tests, the library), on a :class:`Clock`.

    >>> import asyncio
    >>> store = InMemoryRateStore({"m": AliasLimits(max_concurrent=1)})
    >>> [asyncio.run(store.acquire_slot("m", owner, ttl_s=5)) for owner in ("a", "b")]
    [True, False]
    """

    def __init__(
        self,
        limits: Mapping[str, AliasLimits],
        clock: Clock | None = None,
        learning: LearningPolicy | None = None,
    ) -> None:
        self._limits = dict(limits)
        self._clock = clock or MonotonicClock()
        self._states: dict[str, AliasState] = {}
        self.learning = learning or LearningPolicy()

    def _state(self, alias: str) -> tuple[AliasLimits, AliasState]:
        return limits_for(self._limits, alias), self._states.setdefault(alias, AliasState())

    async def acquire(self, alias: str, requests: int = 1, tokens: int = 0) -> Admission:
        limits, state = self._state(alias)
        return state.admit(limits, self._clock.now(), self.learning, requests, tokens)

    async def refund(self, alias: str, tokens: int) -> None:
        limits, state = self._state(alias)
        state.refund(limits, self._clock.now(), self.learning, tokens)

    async def acquire_slot(self, alias: str, owner: str, ttl_s: float) -> bool:
        limits, state = self._state(alias)
        return state.lease(limits.max_concurrent, owner, self._clock.now(), ttl_s)

    async def renew_slots(self, alias: str, owners: Collection[str], ttl_s: float) -> set[str]:
        return self._state(alias)[1].renew(owners, self._clock.now(), ttl_s)

    async def release_slot(self, alias: str, owner: str) -> None:
        self._state(alias)[1].leases.pop(owner, None)

    async def block(self, alias: str, seconds: float) -> None:
        self._state(alias)[1].block(self._clock.now(), seconds)

    async def blocked_for(self, alias: str) -> float:
        return max(0.0, self._state(alias)[1].blocked_until - self._clock.now())

    async def cut(self, alias: str, granted_at: float) -> None:
        limits, state = self._state(alias)
        state.cut(limits, granted_at, self._clock.now(), self.learning)

    async def learn_limits(self, alias: str, rpm: int | None, tpm: int | None) -> None:
        limits, state = self._state(alias)
        state.learn(limits, (rpm, tpm), self._clock.now(), self.learning)

    async def snapshot(self, alias: str) -> StoreSnapshot:
        limits, state = self._state(alias)
        return state.snapshot(limits, self._clock.now(), self.learning)
