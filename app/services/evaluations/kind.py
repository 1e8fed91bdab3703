"""The evaluation run kind: each step runs one example through one graph version and scores it.

``open`` reads the job's :class:`~app.services.evaluations.layout.EvaluationPlan`, prepares
every version it scores (under the runner's shared resource manager, so evaluations share
the limits and rate limiters of jobs) and builds the loss. A step checks the example's input,
runs the version (nodes stored by an earlier owner are restored, not run again), scores the
recorded forward pass and returns the item with ``{"score", "text", "usage"}``: ``usage`` is
what the item spent per role (``task``: the graph's calls; ``judge``: an ``LLMJudge`` term's),
and the item's tokens and cost are both roles'. A failed forward, or a loss that failed (a
judge that gave no score), scores 0 and the item fails: it counts as one of the evaluation's
failures.
"""

from __future__ import annotations

from typing import Any

from app.db.models import Job
from app.db.repositories import graphs as graphs_repo
from app.db.repositories.results import ItemRow
from app.engine import EngineError, ExecutionSettings, InputError, RunResult
from app.engine.execution.inputs import check_inputs
from app.engine.execution.prepared import Execution
from app.engine.optimization.budget import Meter
from app.engine.optimization.calls import metering
from app.engine.optimization.dataset import Example
from app.engine.optimization.losses import Loss
from app.engine.optimization.roles import Role, calling_for
from app.engine.records import ForwardRecord
from app.lifecycle import ItemStatus
from app.services.evaluations.layout import EvaluationPlan, example_of
from app.services.observability.tracing import engine_spans
from app.services.optimization.losses import loss_of
from app.services.runner.calls import on_call
from app.services.runner.kinds import CannotRun, KindRun, RunDeps, Step, flow_of
from app.services.runner.node_rows import restored_records
from app.services.runner.sink import FailedNodeLog, NodeSink

EVALUATION = "evaluation"
FAILURE_SCORE = 0.0


class EvaluationKind:
    """Examples of a dataset through one graph version, or two paired (``jobs.kind =
    "evaluation"``)."""

    name = EVALUATION

    async def open(self, job: Job, deps: RunDeps) -> KindRun:
        if job.spec is None:
            raise CannotRun("the evaluation has no stored spec")
        plan = EvaluationPlan.from_json(job.spec)
        executions = [await _execution(job, version_id, deps) for version_id in plan.version_ids]
        loss = loss_of(plan.spec.loss, deps.resources)
        started = {"graph_versions": plan.versions, "dataset": plan.dataset_id}
        run = EvaluationRun(job.id, executions, loss, started)
        run.judging = ExecutionSettings(spans=engine_spans(deps.tracing))
        return run


async def _execution(job: Job, version_id: str, deps: RunDeps) -> Execution:
    async with deps.sessions() as session:
        version = await graphs_repo.get_version_by_id(session, version_id)
    if version is None:
        raise CannotRun(f"graph version {version_id!r} is gone")
    program = deps.programs.get(version.id, version.definition)
    try:
        for alias in program.plan.aliases:
            deps.resources.config.endpoint(alias)  # ConfigError if no longer configured
    except EngineError as exc:
        raise CannotRun(f"version {version.version} cannot run: {exc}") from None
    settings = ExecutionSettings(
        resources=deps.resources,
        observers=(NodeSink(job.id, deps.writer), deps.metrics.nodes, FailedNodeLog()),
        priority=job.priority,
        flow=await flow_of(job, deps),
        output_limits=deps.limits,
        record=True,
        spans=engine_spans(deps.tracing),
    )
    return Execution(program, settings)


class EvaluationRun:
    """One evaluation, started or resumed: each step scores one example under one version."""

    def __init__(
        self, job_id: str, executions: list[Execution], loss: Loss, started: dict[str, Any]
    ) -> None:
        self.job_id = job_id
        self.executions = executions
        self.loss = loss
        self.started = started
        self.judging = ExecutionSettings()  # the settings a judge's calls take from their context

    async def step(self, step: Step) -> ItemRow:
        slot, example = example_of(step.input)
        execution = self.executions[slot]
        try:
            inputs = check_inputs(execution.plan.graph.inputs, _mapping(example.input))
        except InputError as exc:
            return self._row(step.index, FAILURE_SCORE, str(exc), True, Meter())
        restored = restored_records(step.stored) if step.stored else None
        on_call(step.begin)  # running once its first model call has its slot
        with calling_for(Role.TASK):
            result = await execution.run(inputs, str(step.index), restored)
        meter = _task_meter(result)
        if not result.ok:
            return self._row(step.index, FAILURE_SCORE, _failure(result), True, meter)
        with metering(meter), self.judging:  # an LLMJudge term's calls, under the judge role
            score, text, failed = await self._score(execution, result, example)
        return self._row(step.index, score, text, failed, meter)

    async def _score(
        self, execution: Execution, result: RunResult, example: Example
    ) -> tuple[float, str, bool]:
        record: ForwardRecord = execution.finish(result)
        try:
            feedback = await self.loss(record, example.expected, example=example.id)
        except EngineError as exc:
            return FAILURE_SCORE, f"loss: {exc}", True
        return feedback.score, feedback.text, False

    def _row(self, index: int, score: float, text: str, failed: bool, meter: Meter) -> ItemRow:
        status = ItemStatus.FAILED if failed else ItemStatus.SUCCEEDED
        error = text if failed else None
        usage = {
            role.value: spent.to_dict() for role, spent in meter.by_role.items() if spent.calls
        }
        output = {"score": score, "text": text, "usage": usage}
        total = meter.total
        tokens = (total.input_tokens, total.output_tokens, total.cost)
        return ItemRow(self.job_id, index, status.value, output, error, *tokens)


def _task_meter(result: RunResult) -> Meter:
    """A meter holding the forward pass's model calls under the task role."""
    meter = Meter()
    calls = [record.usage for record in result.records.values() if record.usage is not None]
    tokens_in, tokens_out, cost = result.usage_totals()
    meter.spend(
        Role.TASK, calls=len(calls), input_tokens=tokens_in, output_tokens=tokens_out, cost=cost
    )
    return meter


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _failure(result: RunResult) -> str:
    failed = [result.records[node] for node in result.failed]
    return "; ".join(f"{r.node}: {r.error_type}: {r.error}" for r in failed)
