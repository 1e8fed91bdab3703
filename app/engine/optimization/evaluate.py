"""Scoring a pipeline on a dataset: one recorded forward pass and one loss per example.

Forward passes run concurrently (the resource manager bounds them); results keep the
dataset's order, so concurrency never changes an outcome. A forward pass that fails, or
whose loss fails (a judge that never gave a score), scores ``failure_score`` and is
counted. Under ``metering(meter)`` every forward is admitted before it is dispatched (as
many calls as the graph has ``llm`` nodes, each reserved at an estimate until one returned:
see :mod:`~app.engine.optimization.budget`) and its usage is spent after, under ``role``.

``evaluate()`` is the public face: mean, n, failures and a seeded bootstrap interval.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from app.engine.errors import ConfigError, EngineError
from app.engine.execution.api import run_batch
from app.engine.execution.program import program_for
from app.engine.graph.model import Graph, LLMNode
from app.engine.module import InferenceModule
from app.engine.optimization.budget import BudgetExhausted, Estimate, Hold, Meter
from app.engine.optimization.calls import current_meter, estimate
from app.engine.optimization.dataset import Example, as_examples
from app.engine.optimization.roles import Role
from app.engine.optimization.stats import bootstrap_interval, mean
from app.engine.records import ForwardRecord, NodeRecord, NodeStatus

if TYPE_CHECKING:
    from app.engine.optimization.feedback import Feedback
    from app.engine.optimization.losses import Loss
    from app.engine.resources.config import ResourceConfig
    from app.engine.resources.manager import ResourceManager

Target = InferenceModule | Graph


@dataclass(slots=True)
class Scored:
    """One example's score; ``feedback`` is ``None`` when its forward pass failed."""

    example: Example
    score: float
    feedback: Feedback | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class EvalResult:
    """Mean score over ``n`` items (``failures`` of them failed), with its interval."""

    mean: float
    n: int
    failures: int
    low: float
    high: float
    scores: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "mean": self.mean, "n": self.n, "failures": self.failures, "low": self.low,
            "high": self.high, "scores": list(self.scores),
        }  # fmt: skip


async def evaluate(
    target: Target,
    dataset: Iterable[Example | Mapping[str, Any]],
    loss: Loss,
    *,
    resources: ResourceConfig | ResourceManager | None = None,
    role: Role = Role.VALIDATION,
    failure_score: float = 0.0,
    seed: int | str = 0,
) -> EvalResult:
    """Score ``target`` on every item of ``dataset`` with ``loss``."""
    scored = await score_examples(
        target, as_examples(dataset), loss, role=role, resources=resources,
        failure_score=failure_score,
    )  # fmt: skip
    return summarize(scored, seed=seed)


def summarize(scored: Sequence[Scored], *, seed: int | str = 0) -> EvalResult:
    scores = [s.score for s in scored]
    low, high = bootstrap_interval(scores, seed=seed)
    failures = sum(1 for s in scored if s.error is not None)
    return EvalResult(mean(scores), len(scores), failures, low, high, scores)


async def score_examples(
    target: Target,
    examples: Sequence[Example],
    loss: Loss,
    *,
    role: Role,
    resources: ResourceConfig | ResourceManager | None = None,
    failure_score: float = 0.0,
) -> list[Scored]:
    """Every example scored, in order. ``BudgetExhausted`` is raised before dispatching an
    example the budget cannot pay for, once the examples already started have finished."""
    meter = current_meter()
    graph = program_for(target).plan.graph
    llm = frozenset(node.id for node in graph.nodes if node.op == "llm")
    started: list[asyncio.Task[Scored]] = []
    try:
        for example in examples:
            if started and meter is not None and meter.guessing(role):
                await asyncio.wait(started[:1])  # one forward's size, before the rest start
            hold = _reserve(meter, role, graph, example, resources)
            work = _score_one(target, example, loss, role, resources, failure_score, llm, hold)
            started.append(asyncio.ensure_future(work))
    except BudgetExhausted:
        await asyncio.gather(*started)
        raise
    return list(await asyncio.gather(*started))


async def rescore(scored: Sequence[Scored], loss: Loss, failure_score: float = 0.0) -> list[float]:
    """The scores ``loss`` gives the forward passes already recorded in ``scored``, in order;
    no forward runs again, and one that failed keeps ``failure_score``.

    >>> from app.engine.optimization.feedback import Feedback
    >>> from app.engine.optimization.losses import VerifierLoss
    >>> record = ForwardRecord(None, {}, "7", {}, [])
    >>> ran = Scored(Example("q", "7"), 0.0, Feedback(0.0, "", record))
    >>> failed = Scored(Example("q"), 0.0)
    >>> asyncio.run(rescore([ran, failed], VerifierLoss(lambda out, expected: out == expected)))
    [1.0, 0.0]
    """
    records = [None if s.feedback is None else s.feedback.record for s in scored]
    again = await asyncio.gather(*(
        _loss_of(loss, record, s.example, failure_score)
        for s, record in zip(scored, records, strict=True) if record is not None
    ))  # fmt: skip
    found = iter(again)
    return [failure_score if r is None else next(found).score for r in records]


def _reserve(
    meter: Meter | None, role: Role, graph: Graph, example: Example,
    resources: ResourceConfig | ResourceManager | None,
) -> Hold | None:  # fmt: skip
    # Calls are counted when admitted and their tokens and cost reserved, so concurrent
    # forwards cannot overshoot a cap; the real figures are settled when the forward ends.
    if meter is None:
        return None
    nodes = [node for node in graph.nodes if isinstance(node, LLMNode)]
    return meter.admit(role, len(nodes), _forward_estimate(graph, nodes, example, resources))


def _forward_estimate(
    graph: Graph, nodes: list[LLMNode], example: Example,
    resources: ResourceConfig | ResourceManager | None,
) -> Estimate:  # fmt: skip
    """One call of a forward on ``example``, on average: each node's templates with the
    item's input and every parameter value in them (upstream outputs are not counted)."""
    sent = json.dumps(example.input, ensure_ascii=False, default=str)
    values = "".join(param.value for param in graph.parameters.values())
    each = [estimate(resources, n.alias, n.system + values, n.prompt + sent, n.max_tokens)
            for n in nodes]  # fmt: skip
    total = sum(each, Estimate())
    return Estimate(math.ceil(total.tokens / max(1, len(nodes))), total.cost / max(1, len(nodes)))


async def _score_one(
    target: Target, example: Example, loss: Loss, role: Role,
    resources: ResourceConfig | ResourceManager | None, failure_score: float, llm: frozenset[str],
    hold: Hold | None,
) -> Scored:  # fmt: skip
    [result] = await run_batch(target, [example.input], record=True, resources=resources)
    error = result.error
    if error is None:
        record: ForwardRecord = result.output
        _settle(role, record.nodes, llm, hold)
        return await _loss_of(loss, record, example, failure_score)
    if not isinstance(error, EngineError):
        raise error
    run_result = getattr(error, "result", None)
    _settle(role, run_result.records if run_result is not None else {}, llm, hold)
    return Scored(example, failure_score, None, str(error))


async def _loss_of(loss: Loss, record: ForwardRecord, example: Example, failure: float) -> Scored:
    """The loss of one forward pass; a loss that fails (a judge that never gave a score, or
    whose call failed) scores ``failure`` and is counted. Budget and configuration errors
    end the evaluation."""
    try:
        feedback = await loss(record, example.expected, example=example.id)
    except (BudgetExhausted, ConfigError):
        raise
    except EngineError as error:
        return Scored(example, failure, None, f"loss: {error}")
    return Scored(example, feedback.score, feedback)


def _settle(
    role: Role, records: Mapping[str, NodeRecord], llm: frozenset[str], hold: Hold | None
) -> None:
    meter = current_meter()
    if meter is None:
        return
    made = [r for node, r in records.items() if node in llm and _called(r)]
    meter.spend(
        role,
        calls=len(made),
        input_tokens=sum(r.usage.input_tokens for r in made if r.usage is not None),
        output_tokens=sum(r.usage.output_tokens for r in made if r.usage is not None),
        cost=sum(r.usage.cost for r in made if r.usage is not None),
        hold=hold,
    )


def _called(record: NodeRecord) -> bool:
    """Whether a node made a model call in this run."""
    return not record.restored and record.status in (NodeStatus.SUCCEEDED, NodeStatus.FAILED)
