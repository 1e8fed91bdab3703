"""Scoring a pipeline on a dataset: one recorded forward pass and one loss per example.

The forward passes are one recorded batch, as a job of the same items would run them (the
resource manager bounds them), and each loss starts as its record arrives; results keep the
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
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from app.engine.errors import ConfigError, EngineError
from app.engine.execution.api import stream
from app.engine.execution.program import program_for
from app.engine.graph.model import Graph, LLMNode
from app.engine.module import InferenceModule
from app.engine.optimization.budget import BudgetExhausted, Estimate, Hold, Meter
from app.engine.optimization.calls import current_meter, estimate
from app.engine.optimization.dataset import Example, as_examples
from app.engine.optimization.roles import Role, calling_for
from app.engine.optimization.stats import bootstrap_interval, mean
from app.engine.records import BatchResult, ForwardRecord, NodeRecord, NodeStatus

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
    """Every example scored, in order, from one recorded batch over them all (a failed
    forward is that example's). ``BudgetExhausted`` is raised before dispatching an example
    the budget cannot pay for, once the examples already started have finished:
    ``(await score_examples(graph, examples, loss, role=Role.VALIDATION))[i].score`` is the
    score of ``examples[i]``.
    """
    scoring = _Scoring(examples, loss, role, failure_score, program_for(target).plan.graph)
    with calling_for(role):  # the forward passes' calls; a judge's loss marks its own
        for start, stop in scoring.chunks():
            inputs = scoring.inputs(start, stop, resources)
            batch = stream(target, inputs, record=True, resources=resources, ordered=False)
            async for result in batch:
                scoring.take(start + result.index, result)
        return await scoring.finish()


class _Scoring:
    """One evaluation: admits each example just before the batch dispatches it, settles its
    usage and starts its loss as its record arrives. An error that ends the evaluation
    (the budget, a misconfigured loss) stops admitting; the examples started still finish."""

    def __init__(
        self, examples: Sequence[Example], loss: Loss, role: Role, failure_score: float,
        graph: Graph,
    ) -> None:  # fmt: skip
        self.examples, self.loss, self.role = examples, loss, role
        self.failure_score, self.graph = failure_score, graph
        self.nodes = [node for node in graph.nodes if isinstance(node, LLMNode)]
        self.llm = frozenset(node.id for node in self.nodes)
        self.meter = current_meter()
        self.holds: dict[int, Hold | None] = {}
        self.scored: dict[int, Scored | asyncio.Task[Scored]] = {}
        self.error: BaseException | None = None

    def chunks(self) -> list[tuple[int, int]]:
        """The batches to run: under a tokens or cost cap no forward has sized yet, the first
        example runs alone, so the rest are reserved at a real size rather than a guess."""
        count = len(self.examples)
        if count > 1 and self.meter is not None and self.meter.guessing(self.role):
            return [(0, 1), (1, count)]
        return [(0, count)]

    def inputs(
        self, start: int, stop: int, resources: ResourceConfig | ResourceManager | None
    ) -> Iterator[Any]:
        """The inputs of ``examples[start:stop]``; each is admitted when the batch pulls it
        to dispatch it."""
        for index in range(start, stop):
            if self.error is not None:
                return
            example = self.examples[index]
            try:
                self.holds[index] = self._reserve(example, resources)
            except BudgetExhausted as exhausted:
                self.error = exhausted
                return
            yield example.input

    def take(self, index: int, result: BatchResult) -> None:
        example, hold = self.examples[index], self.holds.pop(index, None)
        error = result.error
        if error is None:
            record: ForwardRecord = result.output
            _settle(self.meter, self.role, record.nodes, self.llm, hold)
            self.scored[index] = asyncio.ensure_future(self._loss_of(record, example))
            return
        if not isinstance(error, EngineError):
            self._stop(error)
        run_result = getattr(error, "result", None)
        records = run_result.records if run_result is not None else {}
        _settle(self.meter, self.role, records, self.llm, hold)
        self.scored[index] = Scored(example, self.failure_score, None, str(error))

    def _reserve(
        self, example: Example, resources: ResourceConfig | ResourceManager | None
    ) -> Hold | None:
        # Calls are counted when admitted and their tokens and cost reserved, so concurrent
        # forwards cannot overshoot a cap; the real figures are settled when the forward ends.
        if self.meter is None:
            return None
        guess = _forward_estimate(self.graph, self.nodes, example, resources)
        return self.meter.admit(self.role, len(self.nodes), guess)

    async def finish(self) -> list[Scored]:
        """Every started example's score, in order, once all are done."""
        losses = [s for s in self.scored.values() if isinstance(s, asyncio.Task)]
        await asyncio.gather(*losses, return_exceptions=True)
        if self.error is not None:
            raise self.error
        ordered = (self.scored[index] for index in range(len(self.scored)))
        return [s if isinstance(s, Scored) else s.result() for s in ordered]

    async def _loss_of(self, record: ForwardRecord, example: Example) -> Scored:
        try:
            return await _loss_of(self.loss, record, example, self.failure_score)
        except BaseException as error:
            self._stop(error)
            raise

    def _stop(self, error: BaseException) -> None:
        if self.error is None:
            self.error = error


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


def _forward_estimate(
    graph: Graph, nodes: list[LLMNode], example: Example,
    resources: ResourceConfig | ResourceManager | None,
) -> Estimate:  # fmt: skip
    """One call of a forward on ``example``, on average: each node's templates with the
    item's input and every parameter value in them (upstream outputs are not counted)."""
    sent = json.dumps(example.input, ensure_ascii=False, default=str)
    values = "".join(param.value for param in graph.parameters.values())
    each = [estimate(resources, n.alias, n.system + values, (n.prompt or "") + sent, n.max_tokens)
            for n in nodes]  # fmt: skip
    total = sum(each, Estimate())
    return Estimate(math.ceil(total.tokens / max(1, len(nodes))), total.cost / max(1, len(nodes)))


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
    meter: Meter | None, role: Role, records: Mapping[str, NodeRecord], llm: frozenset[str],
    hold: Hold | None,
) -> None:  # fmt: skip
    if meter is None:
        return
    made = [r for node, r in records.items() if node in llm and _called(r)]
    meter.spend(
        role,
        calls=len(made),
        hold=hold,
        input_tokens=sum(r.usage.input_tokens for r in made if r.usage is not None),
        output_tokens=sum(r.usage.output_tokens for r in made if r.usage is not None),
        cost=sum(r.usage.cost for r in made if r.usage is not None),
    )


def _called(record: NodeRecord) -> bool:
    """Whether a node made a model call in this run."""
    return not record.restored and record.status in (NodeStatus.SUCCEEDED, NodeStatus.FAILED)
