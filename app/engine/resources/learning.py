"""Limits that learn the provider's real rate, shared through the rate store (DESIGN §5).

A :class:`Learned` record sits next to an alias's GCRA state in the store, so that every
process admits calls at the same learned rate:

- **From headers.** When the provider states its limits (``x-ratelimit-limit-requests`` /
  ``-tokens``, ``anthropic-ratelimit-*-limit``), those are the learned rates (:func:`stated`),
  capped by the configured ones; a 429 does not guess lower (it only pauses the alias, by its
  ``Retry-After``), nor does idle time decay them: they hold until the provider states others.
- **From 429s** of a provider that does not state them: a 429 cuts the request rate to
  ``cut`` times the grants of the last minute, or of the rate in force if lower (:func:`cut`),
  once per epoch: a 429 of a call granted before the latest change cuts nothing. While busy,
  the rate probes upwards by ``probe_per_min`` of itself per minute, until the next 429.
- **Idle decay.** Time an alias with a rate learned from 429s spends idle (its budget full
  and unused: past the request TAT, and not paused by a 429) brings the rate back toward the
  configured one with time constant ``decay_s``, so an old burst does not throttle the next
  job.

Everything here is pure: times are the store's clock, passed in. The stores keep the fields
(Redis hash fields, Postgres columns, memory) and compute the rate with :func:`learned_limits`.

>>> from app.engine.resources.shared import AliasLimits
>>> policy = LearningPolicy(cut=0.9)
>>> state = Learned(grants_start=0.0, grants_cur=120)
>>> state = cut(state, AliasLimits(rpm=600), granted_at=11.0, now=12.0, policy=policy)
>>> round(state.rpm, 1)
108.0
>>> round(learned_limits(AliasLimits(rpm=600), state, 12.0, policy).rpm, 1)
108.0
>>> round(learned_limits(AliasLimits(rpm=600), state, 12.0 + 600, policy).rpm)  # idle 10 min
600
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.engine.resources.shared import AliasLimits, Rate

MIN_RPM = 1.0
GRANTS_WINDOW_S = 60.0
# NOTE: a learned rate this close to the configured one is forgotten (shown as not learned).
_FORGET_RATIO = 0.995
_FORGET_GROWTH = 20.0


@dataclass(frozen=True, slots=True)
class LearningPolicy:
    """How the shared limiter learns: cut factor on a 429, upward probe per minute of busy
    time (a fraction of the learned rate), idle decay time constant in seconds."""

    cut: float = 0.9
    probe_per_min: float = 0.05
    decay_s: float = 60.0


@dataclass(frozen=True, slots=True)
class Learned:
    """An alias's learned state in store time; ``rpm`` / ``tpm`` 0.0 = not learned.

    ``at`` is when the rates were last set; ``idle_s`` the idle time counted since then, up to
    the latest grant. ``tat`` and ``blocked_until`` mirror the alias's request TAT and 429
    pause (the store keeps them anyway), which bound the idle time. ``grants_*`` count grants
    in 60-s buckets (current one from ``grants_start``, and the one before), to estimate the
    grants of the last minute.
    """

    rpm: float = 0.0
    tpm: float = 0.0
    at: float = 0.0
    from_headers: bool = False
    idle_s: float = 0.0
    tat: float = 0.0
    blocked_until: float = 0.0
    grants_start: float = 0.0
    grants_cur: float = 0.0
    grants_prev: float = 0.0


NOTHING = Learned()


def idle_now(state: Learned, now: float) -> float:
    """Idle time since ``at``, the current stretch included: since the budget was full (the
    TAT), the pause over and the rates set; nothing before the first grant."""
    since = max(state.tat, state.blocked_until, state.at)
    if since <= 0.0:
        return state.idle_s
    return state.idle_s + max(0.0, now - since)


def granted(state: Learned, now: float, tat: float, requests: float = 1.0) -> Learned:
    """The state after a grant of ``requests`` at ``now`` that moved the request TAT to
    ``tat`` (what the Redis script and the Postgres statement do). A grant counts by its
    requests: a slice of several (:mod:`app.engine.resources.slices`) is that many grants."""
    elapsed = now - state.grants_start
    if elapsed >= 2 * GRANTS_WINDOW_S:
        start, cur, prev = now, float(requests), 0.0
    elif elapsed >= GRANTS_WINDOW_S:
        start, cur, prev = state.grants_start + GRANTS_WINDOW_S, float(requests), state.grants_cur
    else:
        start, cur, prev = state.grants_start, state.grants_cur + requests, state.grants_prev
    idle = idle_now(state, now)
    return dataclasses.replace(
        state, idle_s=idle, tat=tat, grants_start=start, grants_cur=cur, grants_prev=prev
    )


def grants_per_minute(state: Learned, now: float) -> float:
    """Grants in the last minute, estimated from the two buckets (weighted by overlap)."""
    elapsed = now - state.grants_start
    if elapsed >= 2 * GRANTS_WINDOW_S:
        return 0.0
    if elapsed >= GRANTS_WINDOW_S:
        return state.grants_cur * (1.0 - (elapsed - GRANTS_WINDOW_S) / GRANTS_WINDOW_S)
    return state.grants_cur + state.grants_prev * (1.0 - elapsed / GRANTS_WINDOW_S)


def current(
    configured: float | None, learned: float, state: Learned, now: float, policy: LearningPolicy
) -> float | None:
    """The rate in force: ``learned`` probed up while busy, decayed toward ``configured``
    for the idle time, never above it; ``configured`` itself once decayed (almost) back."""
    if learned <= 0.0:
        return configured
    if state.from_headers:
        return learned if configured is None else min(learned, configured)
    idle = idle_now(state, now)
    busy_min = max(0.0, now - state.at - idle) / 60.0
    rate = learned * (1.0 + policy.probe_per_min * busy_min)
    if configured is None:
        growth = math.exp(idle / policy.decay_s)
        return None if growth >= _FORGET_GROWTH else rate * growth
    rate = configured - (configured - rate) * math.exp(-idle / policy.decay_s)
    return configured if rate >= configured * _FORGET_RATIO else rate


def learned_limits(
    limits: AliasLimits, state: Learned, now: float, policy: LearningPolicy
) -> AliasLimits:
    """``limits`` with the learned rates in force at ``now`` in place of the configured ones."""
    rpm = current(limits.rpm, state.rpm, state, now, policy)
    tpm = current(limits.tpm, state.tpm, state, now, policy)
    return dataclasses.replace(limits, rpm=rpm, tpm=tpm)


def learned_rates(
    limits: AliasLimits, state: Learned, now: float, policy: LearningPolicy
) -> tuple[float | None, float | None]:
    """The learned (rpm, tpm) in force, as a snapshot shows them (``None``: not learned)."""
    rpm = current(limits.rpm, state.rpm, state, now, policy) if state.rpm else None
    tpm = current(limits.tpm, state.tpm, state, now, policy) if state.tpm else None
    return _unless(rpm, limits.rpm), _unless(tpm, limits.tpm)


def _unless(rate: float | None, configured: float | None) -> float | None:
    """``rate``, or ``None`` when it is the configured one (forgotten)."""
    return None if rate == configured else rate


def cut(
    state: Learned, limits: AliasLimits, granted_at: float, now: float, policy: LearningPolicy
) -> Learned | None:
    """The state after a 429 of a call granted at ``granted_at``; ``None``: nothing to change
    (the rates come from headers, or the call was granted before the latest change)."""
    if state.from_headers or granted_at < state.at:
        return None
    in_force = current(limits.rpm, state.rpm, state, now, policy)
    seen = grants_per_minute(state, now)
    base = seen if in_force is None else min(in_force, max(seen, MIN_RPM))
    rpm = max(MIN_RPM, policy.cut * base)
    return dataclasses.replace(state, rpm=rpm, at=now, idle_s=0.0, from_headers=False)


def stated(state: Learned, rpm: float | None, tpm: float | None, now: float) -> Learned | None:
    """The state once the provider stated its limits; ``None`` when it states nothing new."""
    new_rpm = float(rpm) if rpm else state.rpm
    new_tpm = float(tpm) if tpm else state.tpm
    if state.from_headers and (new_rpm, new_tpm) == (state.rpm, state.tpm):
        return None
    if not rpm and not tpm:
        return None
    return dataclasses.replace(
        state, rpm=new_rpm, tpm=new_tpm, at=now, idle_s=0.0, from_headers=True
    )


def repaced_tat(state: Learned, requests: Rate, now: float) -> float:
    """The request TAT floor once stated limits are learned: the grants of the current
    bucket count at the stated rate, so the minute of the first calls (made at the configured
    rate, before any answer) holds no more than the provider allows. At most a minute ahead;
    ``0.0`` (no floor) for a rate learned from 429s, which come after the fact.
    """
    if not state.from_headers or requests.interval_s <= 0.0:
        return 0.0
    return min(state.grants_start + state.grants_cur * requests.interval_s, now + 60.0)


@dataclass(slots=True)
class LearnedCache:
    """Each alias's learned state as a store last answered it, for the store's next decision.

    A shared store returns the state with each acquire; the rate of the next acquire is
    computed from it, at the store time estimated from the local monotonic clock. So a
    change made by another process is in force here from this process's next call on.
    """

    states: dict[str, tuple[Learned, float, float]] = field(default_factory=dict)

    def put(self, alias: str, state: Learned, store_now: float) -> None:
        """Remember ``state`` as read at store time ``store_now``."""
        self.states[alias] = (state, store_now, time.monotonic())

    def get(self, alias: str) -> tuple[Learned, float]:
        """The last state and the store time now, estimated (``NOTHING`` before any read)."""
        found = self.states.get(alias)
        if found is None:
            return NOTHING, 0.0
        state, store_now, read_at = found
        return state, store_now + (time.monotonic() - read_at)

    def limits(self, alias: str, limits: AliasLimits, policy: LearningPolicy) -> AliasLimits:
        """``limits`` with the learned rates in force now, as far as this process knows."""
        state, now = self.get(alias)
        return limits if state is NOTHING else learned_limits(limits, state, now, policy)
