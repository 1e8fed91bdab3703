"""Hard budgets on an optimization run, overall and per role, checked before each dispatch.

A :class:`Meter` counts calls, tokens and cost per :class:`Role`. ``meter.admit(role, calls)``
raises :class:`BudgetExhausted` when the next dispatch would pass a cap (calls are known in
advance; tokens, cost and wall time are checked against what was spent so far), so a run
stops at its cap, never past it.

>>> meter = Meter(Budget(max_calls=2))
>>> meter.admit(Role.TASK, 2); meter.spend(Role.TASK, calls=2)
>>> meter.admit(Role.JUDGE, 1)
Traceback (most recent call last):
...
app.engine.optimization.budget.BudgetExhausted: max_calls: 2 of 2 calls spent, 1 more asked
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
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


class Meter:
    """Spending per role against a :class:`Budget`; ``clock`` is injectable for tests."""

    def __init__(self, budget: Budget | None = None, clock: Callable[[], float] = time.monotonic):
        self.budget = budget or Budget()
        self.clock = clock
        self.started = clock()
        self.elapsed_before = 0.0  # wall seconds spent before a resume
        self.by_role: dict[Role, Usage] = {role: Usage() for role in Role}

    @property
    def total(self) -> Usage:
        total = Usage()
        for usage in self.by_role.values():
            total.add(usage.calls, usage.input_tokens, usage.output_tokens, usage.cost)
        return total

    @property
    def wall_s(self) -> float:
        return self.elapsed_before + self.clock() - self.started

    def admit(self, role: Role, calls: int = 1) -> None:
        """Raise :class:`BudgetExhausted` if ``calls`` more calls for ``role`` would pass a cap."""
        wall = self.budget.max_wall_s
        if wall is not None and self.wall_s >= wall:
            raise BudgetExhausted("max_wall_s", f"{self.wall_s:.1f} s of {wall:g} s spent")
        _check("", self.budget, self.total, calls)
        role_limits = self.budget.roles.get(role)
        if role_limits is not None:
            _check(f"{role.value}.", role_limits, self.by_role[role], calls)

    def spend(
        self, role: Role, *, calls: int = 1, input_tokens: int = 0, output_tokens: int = 0,
        cost: float = 0.0,
    ) -> None:  # fmt: skip
        """Count what a finished (or failed) dispatch cost."""
        self.by_role[role].add(calls, input_tokens, output_tokens, cost)


def _check(scope: str, limits: Limits, spent: Usage, calls: int) -> None:
    if limits.max_calls is not None and spent.calls + calls > limits.max_calls:
        message = f"{spent.calls} of {limits.max_calls} calls spent, {calls} more asked"
        raise BudgetExhausted(f"{scope}max_calls", message)
    if limits.max_tokens is not None and spent.tokens >= limits.max_tokens:
        message = f"{spent.tokens} of {limits.max_tokens} tokens spent"
        raise BudgetExhausted(f"{scope}max_tokens", message)
    if limits.max_cost is not None and spent.cost >= limits.max_cost:
        raise BudgetExhausted(f"{scope}max_cost", f"{spent.cost:.4f} of {limits.max_cost:g} spent")
