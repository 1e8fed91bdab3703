"""The live projection of a run's calls: what it spent, what it will spend in all at the rate
its finished steps spent, and the upper bound still open to it.

Per role, ``spent`` is what the meter counted (the test's calls included). What is left is
the baseline if it has not run (``Projection.baseline``), the test if it has not run
(``Projection.test``), and the steps left in the epochs: ``upper_bound`` counts them at the dry
run's unit costs (the training items left times ``Projection.training``, the steps left times
``Projection.gating``: every step proposes), ``projected_total`` at the fraction of those unit
costs the finished steps spent. With full batches that is the steps left times the mean calls
per step of the finished steps, so validation counts at the proposal rate observed. Before a
step finished, the steps left count at the bound. A run that ended, or whose job did, has
nothing left: both figures are what it spent.

The budget's caps are not applied: a ``projected_total`` past ``max_calls`` says the run will
stop at the cap (``budget_exhausted``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from app.engine.optimization.history import StepRecord
from app.engine.optimization.roles import Role
from app.engine.optimization.state import TrainerState
from app.services.optimization.projection import Cost, Projection


@dataclass(frozen=True, slots=True)
class Outlook:
    """Calls of one role, or of the run: spent so far, projected in all, and the bound."""

    spent: int = 0
    projected_total: int = 0
    upper_bound: int = 0

    def __add__(self, other: Outlook) -> Outlook:
        return Outlook(
            self.spent + other.spent,
            self.projected_total + other.projected_total,
            self.upper_bound + other.upper_bound,
        )


@dataclass(frozen=True, slots=True)
class StepCounts:
    """Steps finished, steps left in the epochs, and finished steps that proposed."""

    finished: int
    left: int
    proposed: int


@dataclass(frozen=True, slots=True)
class LiveProjection:
    """The run's calls (``calls``), per role (``by_role``, by role name) and its steps."""

    calls: Outlook
    by_role: dict[str, Outlook]
    steps: StepCounts


@dataclass(frozen=True, slots=True)
class _Work:
    """Training items and steps, priced at the dry run's unit costs."""

    items: int
    steps: int

    def bound(self, projection: Projection, role: Role) -> int:
        training = _calls(projection.training, role)
        return self.items * training + self.steps * _calls(projection.gating, role)


@dataclass(frozen=True, slots=True)
class _Left:
    baseline: bool
    work: _Work
    test: bool

    def fixed(self, projection: Projection, role: Role) -> int:
        """The baseline's and the test's calls, those not run yet."""
        baseline = _calls(projection.baseline, role) if self.baseline else 0
        return baseline + (_calls(projection.test, role) if self.test else 0)


def live_projection(
    projection: Projection,
    state: TrainerState,
    tested: Mapping[str, Mapping[str, float]] | None = None,
    *,
    ended: bool = False,
) -> LiveProjection:
    """The live projection of a run in ``state`` whose dry-run projection is ``projection``;
    ``tested`` is the test's usage by role once it ran (``None`` before), ``ended`` says
    the run makes no more calls (its job ended).

    >>> from app.engine.optimization.history import StepRecord
    >>> unit = {Role.TASK: Cost(1)}
    >>> projection = Projection(4, {}, items=4, training=unit)
    >>> state = TrainerState(started=True, step=1, usage={"task": {"calls": 1}})
    >>> state.history.steps.append(StepRecord(0, 1, [1], [1.0], calls={"task": 1}))
    >>> live_projection(projection, state, {}).calls
    Outlook(spent=1, projected_total=4, upper_bound=4)
    """
    left = _left(projection, state, tested is not None, ended)
    counted = [step for step in state.history.steps if step.calls]  # older steps lack counts
    spent = _spent(state.usage, tested or {})
    by_role = {
        role.value: _outlook(projection, role, spent.get(role.value, 0), left, counted)
        for role in Role
    }
    steps = state.history.steps
    counts = StepCounts(len(steps), left.work.steps, sum(step.usable for step in steps))
    return LiveProjection(_total(by_role.values()), by_role, counts)


def _left(projection: Projection, state: TrainerState, tested: bool, ended: bool) -> _Left:
    if ended or (state.finished and tested):
        return _Left(False, _Work(0, 0), False)
    if state.finished:
        return _Left(False, _Work(0, 0), True)
    steps = state.history.steps
    items = projection.items - sum(len(step.examples) for step in steps)
    work = _Work(max(0, items), max(0, projection.steps - len(steps)))
    return _Left(not state.started, work, not tested)


def _outlook(
    projection: Projection, role: Role, spent: int, left: _Left, counted: list[StepRecord]
) -> Outlook:
    fixed, bound = left.fixed(projection, role), left.work.bound(projection, role)
    done = _Work(sum(len(step.examples) for step in counted), len(counted))
    priced = done.bound(projection, role)
    observed = sum(step.calls.get(role.value, 0) for step in counted)
    rest = round(bound * observed / priced) if priced else bound
    return Outlook(spent, spent + fixed + rest, spent + fixed + max(bound, rest))


def _spent(*usages: Mapping[str, Mapping[str, float]]) -> dict[str, int]:
    found: dict[str, int] = {}
    for usage in usages:
        for role, spent in usage.items():
            found[role] = found.get(role, 0) + int(spent.get("calls", 0))
    return found


def _calls(costs: Mapping[Role, Cost], role: Role) -> int:
    return costs.get(role, Cost()).calls


def _total(outlooks: Iterable[Outlook]) -> Outlook:
    total = Outlook()
    for outlook in outlooks:
        total += outlook
    return total
