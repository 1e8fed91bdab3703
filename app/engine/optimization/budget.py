"""Hard budgets on an optimization run, overall and per role, checked before each dispatch.

A :class:`Meter` counts calls, tokens and cost per :class:`Role`. ``hold = meter.admit(role,
calls, estimate)`` raises :class:`BudgetExhausted` when the dispatch could pass a cap, else
counts its calls and reserves tokens and cost for them; ``meter.spend(role, ..., hold=hold)``
releases the reservation and counts what the dispatch really cost. A call is reserved at the
largest tokens and cost one call of its role has cost so far, or at the caller's ``estimate``
before any returned. A dispatch is refused when spent + reserved + its reservation would pass
a cap, so calls are never passed, and tokens and cost are not passed unless one call costs
more than the largest seen so far (or its estimate) while others are in flight. ``max_wall_s``
refuses every dispatch once the wall time is spent (the trainer also stops a step in flight at
that deadline).

>>> meter = Meter(Budget(max_calls=2))
>>> hold = meter.admit(Role.TASK, 2); meter.spend(Role.TASK, calls=2, hold=hold)
>>> meter.admit(Role.JUDGE, 1)
Traceback (most recent call last):
...
app.engine.optimization.budget.BudgetExhausted: max_calls: 2 of 2 calls spent, 1 more asked
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields

from app.engine.errors import EngineError
from app.engine.optimization.roles import Role


class BudgetExhausted(EngineError):
    """The next dispatch would pass a cap; ``cap`` names it (``max_calls``,
    ``judge.max_tokens``)."""

    def __init__(self, cap: str, message: str) -> None:
        super().__init__(f"{cap}: {message}")
        self.cap = cap


@dataclass(frozen=True, slots=True)
class Limits:
    """Caps of one scope (the run, or one role); ``None`` is no cap."""

    max_calls: int | None = None
    max_tokens: int | None = None
    max_cost: float | None = None


@dataclass(frozen=True, slots=True)
class Budget(Limits):
    """The run's caps, ``max_wall_s`` and per-role caps (``roles={Role.JUDGE: Limits(...)}``)."""

    max_wall_s: float | None = None
    roles: Mapping[Role, Limits] = field(default_factory=dict)

    def less(self, spent: Mapping[Role, Usage]) -> Budget:
        """The caps left once ``spent`` (per role) is taken from them; the wall cap is kept.

        >>> left = Budget(max_calls=10, roles={Role.JUDGE: Limits(max_calls=4)}).less(
        ...     {Role.JUDGE: Usage(calls=3)})
        >>> left.max_calls, left.roles[Role.JUDGE].max_calls
        (7, 1)
        """
        overall = _less(self, _sum(spent.values()))
        roles = {
            role: _less(limits, spent.get(role, Usage())) for role, limits in self.roles.items()
        }
        return Budget(
            overall.max_calls, overall.max_tokens, overall.max_cost, self.max_wall_s, roles
        )


@dataclass(slots=True)
class Usage:
    """What one scope spent."""

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def add(self, calls: int, input_tokens: int, output_tokens: int, cost: float) -> None:
        self.calls += calls
        self.input_tokens += input_tokens
        self.output_tokens += output_tokens
        self.cost += cost

    def to_dict(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True, slots=True)
class Estimate:
    """Tokens and cost of one call, or reserved for calls in flight."""

    tokens: int = 0
    cost: float = 0.0

    def __add__(self, other: Estimate) -> Estimate:
        return Estimate(self.tokens + other.tokens, self.cost + other.cost)

    def __sub__(self, other: Estimate) -> Estimate:
        return Estimate(self.tokens - other.tokens, self.cost - other.cost)

    def times(self, count: int) -> Estimate:
        return Estimate(self.tokens * count, self.cost * count)

    def largest(self, other: Estimate) -> Estimate:
        return Estimate(max(self.tokens, other.tokens), max(self.cost, other.cost))


@dataclass(frozen=True, slots=True)
class Hold:
    """Calls admitted together, counted already, and what is reserved for them until spent."""

    calls: int
    reserved: Estimate


class Meter:
    """Spending per role against a :class:`Budget`; ``clock`` is injectable for tests."""

    def __init__(self, budget: Budget | None = None, clock: Callable[[], float] = time.monotonic):
        self.budget = budget or Budget()
        self.clock = clock
        self.started = clock()
        self.elapsed_before = 0.0  # wall seconds spent before a resume
        self.by_role: dict[Role, Usage] = {role: Usage() for role in Role}
        self.reserved: dict[Role, Estimate] = {role: Estimate() for role in Role}
        self.largest: dict[Role, Estimate] = {}  # the most one call of a role has cost

    @property
    def total(self) -> Usage:
        return _sum(self.by_role.values())

    @property
    def wall_s(self) -> float:
        return self.elapsed_before + self.clock() - self.started

    def wall_left(self) -> float | None:
        """Seconds left before ``max_wall_s`` (``None`` without a wall cap)."""
        wall = self.budget.max_wall_s
        return None if wall is None else wall - self.wall_s

    def wall_exhausted(self) -> BudgetExhausted:
        message = f"{self.wall_s:.1f} s of {self.budget.max_wall_s:g} s spent"
        return BudgetExhausted("max_wall_s", message)

    def guessing(self, role: Role) -> bool:
        """Whether a call of ``role`` would be reserved at a guess (none has returned yet)
        under a tokens or cost cap."""
        scopes = (self.budget, self.budget.roles.get(role))
        sized = any(s is not None and (s.max_tokens, s.max_cost) != (None, None) for s in scopes)
        return sized and role not in self.largest

    def admit(self, role: Role, calls: int = 1, estimate: Estimate | None = None) -> Hold:
        """Count ``calls`` more calls for ``role`` and reserve their tokens and cost (each at
        the largest a call of ``role`` has cost, else at ``estimate``); raise
        :class:`BudgetExhausted`, counting nothing, if that could pass a cap."""
        left = self.wall_left()
        if left is not None and left <= 0:
            raise self.wall_exhausted()
        hold = Hold(calls, self.largest.get(role, estimate or Estimate()).times(calls))
        reserved = sum(self.reserved.values(), Estimate())
        _check("", self.budget, self.total, reserved, hold)
        role_limits = self.budget.roles.get(role)
        if role_limits is not None:
            _check(f"{role.value}.", role_limits, self.by_role[role], self.reserved[role], hold)
        self.by_role[role].calls += calls
        self.reserved[role] += hold.reserved
        return hold

    def spend(
        self, role: Role, *, calls: int = 1, input_tokens: int = 0, output_tokens: int = 0,
        cost: float = 0.0, hold: Hold | None = None,
    ) -> None:  # fmt: skip
        """Count what a finished (or failed) dispatch cost: the ``calls`` it made, their
        tokens and cost. Given the ``hold`` its admission returned, release that (its calls
        were counted then, and ``calls`` replaces them)."""
        if hold is not None:
            self.reserved[role] -= hold.reserved
            self.by_role[role].calls -= hold.calls
        self.by_role[role].add(calls, input_tokens, output_tokens, cost)
        if calls > 0 and input_tokens + output_tokens > 0:
            each = Estimate(math.ceil((input_tokens + output_tokens) / calls), cost / calls)
            self.largest[role] = self.largest.get(role, each).largest(each)


def _sum(usages: Iterable[Usage]) -> Usage:
    total = Usage()
    for usage in usages:
        total.add(usage.calls, usage.input_tokens, usage.output_tokens, usage.cost)
    return total


def _less(limits: Limits, spent: Usage) -> Limits:
    return Limits(
        None if limits.max_calls is None else max(0, limits.max_calls - spent.calls),
        None if limits.max_tokens is None else max(0, limits.max_tokens - spent.tokens),
        None if limits.max_cost is None else max(0.0, limits.max_cost - spent.cost),
    )


def _check(scope: str, limits: Limits, spent: Usage, reserved: Estimate, hold: Hold) -> None:
    if limits.max_calls is not None and spent.calls + hold.calls > limits.max_calls:
        message = f"{spent.calls} of {limits.max_calls} calls spent, {hold.calls} more asked"
        raise BudgetExhausted(f"{scope}max_calls", message)
    tokens = spent.tokens + reserved.tokens
    if limits.max_tokens is not None and _passes(tokens, hold.reserved.tokens, limits.max_tokens):
        message = (
            f"{spent.tokens} of {limits.max_tokens} tokens spent, {reserved.tokens} reserved "
            f"for calls in flight, about {hold.reserved.tokens} more asked"
        )
        raise BudgetExhausted(f"{scope}max_tokens", message)
    cost = spent.cost + reserved.cost
    if limits.max_cost is not None and _passes(cost, hold.reserved.cost, limits.max_cost):
        message = (
            f"{spent.cost:.4f} of {limits.max_cost:g} spent, {reserved.cost:.4f} reserved "
            f"for calls in flight, about {hold.reserved.cost:.4f} more asked"
        )
        raise BudgetExhausted(f"{scope}max_cost", message)


def _passes(used: float, asked: float, cap: float) -> bool:
    """Whether ``asked`` more on top of ``used`` passes ``cap`` (nothing fits once it is
    reached, not even a call of unknown size)."""
    return used >= cap or used + asked > cap
