"""The expected spend of an optimization run: its dry-run upper bound scaled, per role, by how
much of their own upper bound the tenant's earlier comparable runs of the graph spent.

The upper bound (:mod:`app.services.optimization.projection`) counts every step as
proposing; a run spends less, by how often its steps propose, how many parameters get
feedback and how early it stops, which the models' replies decide. Earlier runs of the same
graph with the same settings (:func:`settings_key`) show that fraction. For each role ``r``
and each earlier run ``k`` (the last :data:`MAX_RUNS` finished ones):

    ratio_calls(r, k)  = calls(r, k)  / upper_bound_calls(r, k)
    ratio_tokens(r, k) = tokens(r, k) / upper_bound_tokens(r, k)
    cost_rate(r, k)    = cost(r, k)   / upper_bound_calls(r, k)

over the runs whose upper bound of ``r`` is not zero, and

    expected_calls(r)  = round(upper_bound_calls(r)  * median_k ratio_calls(r, k))
    expected_tokens(r) = round(upper_bound_tokens(r) * median_k ratio_tokens(r, k))
    expected_cost(r)   = upper_bound_calls(r) * median_k cost_rate(r, k)

The totals are the sums over roles. A role no earlier run had keeps its upper bound (and an
unknown cost). Without earlier runs the basis is ``upper_bound``: the expected calls and
tokens are the upper bound's, and the cost is unknown (``None``: prices are not projected).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from statistics import median
from typing import Any

from app.engine.optimization.roles import Role
from app.services.optimization.projection import Cost, Projection
from app.services.optimization.spec import OptimizationSpec

MAX_RUNS = 5  # the earlier runs a projection learns from, newest first


class Basis(StrEnum):
    """What an expected figure rests on."""

    HISTORY = "history"  # earlier comparable runs' spend against their upper bound
    UPPER_BOUND = "upper_bound"  # no earlier run: the upper bound itself


@dataclass(frozen=True, slots=True)
class PastRun:
    """An earlier finished run: its dry-run projection and what it spent per role (role
    name -> ``calls``, ``input_tokens``, ``output_tokens``, ``cost``; the test included)."""

    projection: Projection
    spent: Mapping[str, Mapping[str, float]]


@dataclass(frozen=True, slots=True)
class Spend:
    """Calls, tokens and cost (``None``: unknown) of one role, or of the run."""

    calls: int
    tokens: int
    cost: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"calls": self.calls, "tokens": self.tokens, "cost": self.cost}


@dataclass(frozen=True, slots=True)
class Expected:
    """The expected spend, in all and per role, its basis and how many runs it rests on."""

    basis: Basis
    runs: int
    roles: dict[Role, Spend]

    @property
    def total(self) -> Spend:
        spends = list(self.roles.values())
        costs = [spend.cost for spend in spends]
        cost = None if None in costs else sum(c for c in costs if c is not None)
        return Spend(sum(s.calls for s in spends), sum(s.tokens for s in spends), cost)

    def to_dict(self) -> dict[str, Any]:
        """The dry-run answer's ``expected``: the totals, basis, runs and per-role figures."""
        roles = {role.value: spend.to_dict() for role, spend in self.roles.items()}
        return {**self.total.to_dict(), "basis": self.basis.value, "runs": self.runs,
                "roles": roles}  # fmt: skip


def expected(projection: Projection, past: Sequence[PastRun]) -> Expected:
    """The expected spend of a run whose upper bound is ``projection``, learnt from ``past``
    (newest first; only the first :data:`MAX_RUNS` count).

    >>> bound = Projection(2, {Role.TASK: Cost(10, 100, 50), Role.VALIDATION: Cost(40, 400, 0)})
    >>> spent = {"task": {"calls": 10, "input_tokens": 90, "output_tokens": 30, "cost": 0.5},
    ...          "validation": {"calls": 10, "input_tokens": 100, "output_tokens": 0}}
    >>> found = expected(bound, [PastRun(bound, spent)])
    >>> found.basis.value, found.total.calls, found.roles[Role.VALIDATION].calls
    ('history', 20, 10)
    >>> expected(bound, []).total
    Spend(calls=50, tokens=550, cost=None)
    """
    runs = list(past[:MAX_RUNS])
    if not runs:
        roles = {role: Spend(c.calls, c.tokens, None) for role, c in projection.roles.items()}
        return Expected(Basis.UPPER_BOUND, 0, roles)
    roles = {role: _role(role, cost, runs) for role, cost in projection.roles.items()}
    return Expected(Basis.HISTORY, len(runs), roles)


def _role(role: Role, bound: Cost, runs: Sequence[PastRun]) -> Spend:
    if bound.calls == 0:
        return Spend(0, bound.tokens, 0.0)  # the run makes no call of this role
    seen = [(run.projection.roles.get(role, Cost()), run.spent.get(role.value, {})) for run in runs]
    by_calls = [(b, s) for b, s in seen if b.calls > 0]
    if not by_calls:
        return Spend(bound.calls, bound.tokens, None)
    calls = median(_calls(s) / b.calls for b, s in by_calls)
    cost = median(float(s.get("cost", 0.0)) / b.calls for b, s in by_calls)
    by_tokens = [_tokens(s) / b.tokens for b, s in seen if b.tokens > 0]
    tokens = median(by_tokens) if by_tokens else 1.0
    return Spend(round(bound.calls * calls), round(bound.tokens * tokens), bound.calls * cost)


def _calls(spent: Mapping[str, float]) -> int:
    return int(spent.get("calls", 0))


def _tokens(spent: Mapping[str, float]) -> int:
    return int(spent.get("input_tokens", 0)) + int(spent.get("output_tokens", 0))


def settings_key(spec: OptimizationSpec) -> dict[str, Any]:
    """What makes two runs of one graph comparable: the same trained parameters, optimizer,
    loss and selection metric, stop rules and ledger use. Data, schedule, budget, seed and
    version may differ (the ratio to each run's own upper bound absorbs their sizes).
    Parameters are compared as the requests name them (omitted: every trainable one)."""
    dumped = spec.model_dump(mode="json")
    kept = ("parameters", "optimizer", "loss", "min_delta", "patience", "target", "cache",
            "replay")  # fmt: skip
    key = {name: dumped[name] for name in kept}
    key["parameters"] = None if spec.parameters is None else sorted(spec.parameters)
    return {**key, "metric": spec.metric.model_dump(mode="json")}
