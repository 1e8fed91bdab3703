"""The dry-run projection of an optimization run: calls and tokens per role, and whether a
budget can pay for the smallest useful run.

The run has ``steps = epochs * ceil(n_train / batch_size)``. Every training item, once per
epoch, costs one task call per ``llm`` node, one judge call per judge term of the loss and one
critic call per ``llm`` node (role ``backward``). Every step costs one optimizer call per
trained parameter and one validation: each val item through the graph (role ``validation``),
plus a judge call per item when the selection metric has a judge. A baseline validation at
the start and one test evaluation at the end are counted the same way, under ``validation``.
Judge calls are counted under ``judge`` wherever they grade (training, validation or test):
the engine's ``LLMJudge`` meters them so, and the projection is checked against the same
per-role caps as the run's meter.

These are the first attempts of every call: retries of unparseable replies are not projected,
and a step without feedback on a parameter makes no optimizer call for it, and a step without
proposals no validation, so the projection is an upper bound on a run without retries. Task
calls are exact when every forward succeeds. Critic, optimizer and validation calls can be
several times what a run makes when much of the feedback is "no change" (items the prompt
already gets right): on the offline simulator's Task B, 3 epochs of batch 5, the run made
1,043 calls of the 5,268 projected (``make bench-optimization`` prints the figures per role).
Output tokens are caps (``max_tokens`` or the defaults),
so tokens are an upper bound too.

Token sizes come from :mod:`app.services.optimization.call_sizes`. A run's status counts
what is left at the run's own observed rate, from these unit costs
(:mod:`app.services.optimization.live`); a dry run's expected spend scales this bound by what
earlier comparable runs spent of theirs (:mod:`app.services.optimization.expected`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from app.engine import Graph
from app.engine.optimization.roles import Role
from app.services.errors import Issue
from app.services.optimization.call_sizes import CallSizes, Tokens
from app.services.optimization.checks import Sizes, trained_parameters
from app.services.optimization.spec import BudgetSpec, LimitsSpec, LossSpec, OptimizationSpec

MIN_STEPS = 3  # a budget must pay for a baseline and this many steps (or the run's, if fewer)


@dataclass(frozen=True, slots=True)
class Cost:
    """Calls and tokens of one role (or of several)."""

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Cost) -> Cost:
        return Cost(
            self.calls + other.calls,
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
        )

    def times(self, count: int) -> Cost:
        return Cost(self.calls * count, self.input_tokens * count, self.output_tokens * count)

    def to_dict(self) -> dict[str, int]:
        return {
            "calls": self.calls,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "tokens": self.tokens,
        }


def _calls(count: int, tokens: Tokens, calls_per_unit: int = 1) -> Cost:
    """``count`` units of work, each ``calls_per_unit`` calls of ``tokens`` in all."""
    return Cost(count * calls_per_unit, count * tokens.input, count * tokens.output)


@dataclass(frozen=True, slots=True)
class Projection:
    """What a run is projected to spend: ``roles`` for the whole run, ``baseline`` and
    ``per_step`` (a full batch) for :func:`affordable`, and the unit costs the whole is made
    of: ``training`` per training item (of ``items`` in all epochs), ``gating`` per step (its
    optimizer calls and the validation of its proposals) and ``test``, the final test (kept
    from the trainer's budget before training, and part of what :func:`affordable` asks)."""

    steps: int
    roles: dict[Role, Cost]
    baseline: dict[Role, Cost] = field(default_factory=dict)
    per_step: dict[Role, Cost] = field(default_factory=dict)
    items: int = 0
    training: dict[Role, Cost] = field(default_factory=dict)
    gating: dict[Role, Cost] = field(default_factory=dict)
    test: dict[Role, Cost] = field(default_factory=dict)

    @property
    def total(self) -> Cost:
        return _total(self.roles.values())

    def minimum(self) -> dict[Role, Cost]:
        """What the smallest useful run spends: the baseline, ``MIN_STEPS`` steps (all of
        the run's steps, when it has fewer) and the test split."""
        steps = min(MIN_STEPS, self.steps)
        return {r: self.baseline.get(r, Cost()) + self.per_step.get(r, Cost()).times(steps)
                + self.test.get(r, Cost()) for r in Role}  # fmt: skip

    def to_dict(self) -> dict[str, object]:
        """The dry-run answer: steps, per-role and total calls and tokens."""
        roles = {role.value: cost.to_dict() for role, cost in self.roles.items()}
        return {"steps": self.steps, "roles": roles, "total": self.total.to_dict()}

    def to_json(self) -> dict[str, Any]:
        """Everything, as a run's stored plan keeps it (see :meth:`from_json`)."""
        parts = {name: _roles_json(getattr(self, name)) for name in _PARTS}
        return {"steps": self.steps, "items": self.items, **parts}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Projection:
        """The projection :meth:`to_json` stored.

        >>> projection = Projection(2, {Role.TASK: Cost(4, 40, 8)}, items=4)
        >>> Projection.from_json(projection.to_json()) == projection
        True
        """
        parts = {name: _roles_of(data.get(name, {})) for name in _PARTS}
        return cls(steps=int(data["steps"]), items=int(data.get("items", 0)), **parts)


_PARTS = ("roles", "baseline", "per_step", "training", "gating", "test")


def _roles_json(costs: Mapping[Role, Cost]) -> dict[str, list[int]]:
    return {role.value: [c.calls, c.input_tokens, c.output_tokens] for role, c in costs.items()}


def _roles_of(data: Mapping[str, list[int]]) -> dict[Role, Cost]:
    return {Role(role): Cost(*(int(n) for n in counts)) for role, counts in data.items()}


def project(spec: OptimizationSpec, graph: Graph, sizes: Sizes, input_chars: int = 0) -> Projection:
    """The projection of ``spec`` on ``graph`` with data of ``sizes`` whose items' inputs are
    ``input_chars`` long as JSON (see ``mean_input_chars``). Check the spec first: a parameter
    the graph lacks raises ``KeyError``.

    >>> from app.engine import Graph
    >>> graph = Graph.model_validate({"name": "g", "inputs": {"q": {}},
    ...     "parameters": {"p": {"value": "Be brief."}}, "nodes": [{"id": "a", "op": "llm",
    ...     "alias": "m", "system": "{p}", "prompt": "{q}"}], "outputs": {"y": "a"}})
    >>> spec = OptimizationSpec.model_validate({"graph_id": "g", "train": "t", "val": "v",
    ...     "loss": {"verifiers": [{"op": "exact"}]}, "budget": {"max_calls": 900},
    ...     "schedule": {"epochs": 2, "batch_size": 5}})
    >>> projection = project(spec, graph, Sizes(train=10, val=4, test=6))
    >>> projection.steps, {r.value: c.calls for r, c in projection.roles.items()}
    (4, {'task': 20, 'judge': 0, 'backward': 20, 'optimizer': 4, 'validation': 26})
    """
    calls = CallSizes(graph, input_chars)
    epochs, batch = spec.schedule.epochs, min(spec.schedule.batch_size, sizes.train)
    steps = epochs * math.ceil(sizes.train / spec.schedule.batch_size)
    items = epochs * sizes.train  # the last batch of an epoch may be short
    per_item = _PerItem(calls, spec)
    training = _merge(per_item.training(1))
    optimizer = {Role.OPTIMIZER: _optimizer_step(calls, spec, batch)}
    gating = _merge(optimizer, per_item.validating(sizes.val))
    baseline, test = _merge(per_item.validating(sizes.val)), _merge(per_item.validating(sizes.test))
    roles = _merge(_times(training, items), _times(gating, steps), baseline, test)
    per_step = _merge(_times(training, batch), gating)
    return Projection(steps, roles, baseline, per_step, items, training, gating, test)


class _PerItem:
    """What scoring items costs: in training (forward, loss, backward) and in validation."""

    def __init__(self, calls: CallSizes, spec: OptimizationSpec) -> None:
        nodes = len(calls.llm_nodes)
        self.forward = _calls(1, calls.forward, nodes)
        self.backward = _calls(1, calls.backward, nodes)
        self.loss_judge = _judge(calls, spec.loss)
        self.metric_judge = _judge(calls, spec.metric)

    def training(self, items: int) -> dict[Role, Cost]:
        return {
            Role.TASK: self.forward.times(items),
            Role.JUDGE: self.loss_judge.times(items),
            Role.BACKWARD: self.backward.times(items),
        }

    def validating(self, items: int) -> dict[Role, Cost]:
        # The engine's LLMJudge meters every grading under JUDGE, in validation too.
        return {
            Role.VALIDATION: self.forward.times(items),
            Role.JUDGE: self.metric_judge.times(items),
        }


def _times(costs: dict[Role, Cost], count: int) -> dict[Role, Cost]:
    return {role: cost.times(count) for role, cost in costs.items()}


def _judge(calls: CallSizes, loss: LossSpec) -> Cost:
    return Cost() if loss.judge is None else _calls(1, calls.judge(loss.judge.rubric))


def _merge(*parts: dict[Role, Cost]) -> dict[Role, Cost]:
    """Per-role sums of ``parts``, every role present, in role order."""
    return {role: _total(part.get(role, Cost()) for part in parts) for role in Role}


def _optimizer_step(calls: CallSizes, spec: OptimizationSpec, batch: int) -> Cost:
    names = trained_parameters(spec, calls.graph)
    conservatism = spec.optimizer.conservatism
    return _total(_calls(1, calls.optimizer(name, batch, conservatism)) for name in names)


def _total(costs: Iterable[Cost]) -> Cost:
    total = Cost()
    for cost in costs:
        total += cost
    return total


def affordable(projection: Projection, budget: BudgetSpec) -> list[Issue]:
    """Issues naming each cap (``budget.max_calls``, ``budget.roles.judge.max_tokens``) that
    cannot pay for a baseline validation, three steps (all steps of a shorter run) and the
    test split; empty when the budget can.
    ``max_cost`` and ``max_wall_seconds`` are not projected (prices and speeds are unknown)."""
    needed = projection.minimum()
    steps = min(MIN_STEPS, projection.steps)
    what = _smallest_run(steps, tested=_total(projection.test.values()).calls > 0)
    issues = list(_short("budget", budget, _total(needed.values()), what))
    for role, limits in budget.roles.given().items():
        issues += _short(f"budget.roles.{role.value}", limits, needed[role], what)
    return issues


def _smallest_run(steps: int, *, tested: bool) -> str:
    counted = f"{steps} step{'' if steps == 1 else 's'}"
    if tested:
        return f"a baseline validation, {counted} and the test split"
    return f"a baseline validation and {counted}"


def _short(field: str, limits: LimitsSpec, needed: Cost, what: str) -> Iterator[Issue]:
    if limits.max_calls is not None and limits.max_calls < needed.calls:
        message = f"{limits.max_calls:,} calls cannot pay for {what}: {needed.calls:,} calls"
        yield Issue(f"{field}.max_calls", message)
    if limits.max_tokens is not None and limits.max_tokens < needed.tokens:
        message = f"{limits.max_tokens:,} tokens cannot pay for {what}: about {needed.tokens:,}"
        yield Issue(f"{field}.max_tokens", message)
