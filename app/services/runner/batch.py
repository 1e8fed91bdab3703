"""The batch run kind: a job's items, each through one graph version in the engine.

The first :class:`~app.services.runner.kinds.RunKind`: ``open`` compiles the job's graph
version (a graph that cannot run fails the job), and each step runs one item as its own engine
execution, with the nodes an earlier process stored restored rather than run again. Finished
nodes are queued as they end (:class:`NodeSink`).
"""

from __future__ import annotations

from typing import Any

from app.db.models import Job
from app.db.repositories import graphs as graphs_repo
from app.db.repositories.results import ItemRow
from app.engine import EngineError, ExecutionSettings, Flow, InputError, RunResult
from app.engine.execution.inputs import check_inputs
from app.engine.execution.prepared import Execution
from app.lifecycle import ItemStatus
from app.services.observability.tracing import engine_spans
from app.services.runner.calls import on_call
from app.services.runner.humans import (
    HumanInput,
    awaiting_input,
    finished_records,
    waiting_row,
)
from app.services.runner.kinds import BATCH, CannotRun, KindRun, RunDeps, Step, flow_of
from app.services.runner.node_rows import restored_records
from app.services.runner.sink import FailedNodeLog, NodeSink


class BatchKind:
    """Items of one graph version (``jobs.kind = "batch"``, the default)."""

    name = BATCH

    async def open(self, job: Job, deps: RunDeps) -> KindRun:
        async with deps.sessions() as session:
            version = await graphs_repo.get_version_by_id(session, job.graph_version_id)
        assert version is not None  # a job's version is immutable and never deleted
        flow = await flow_of(job, deps)
        try:
            execution = _prepare(job, version.id, version.definition, deps, flow)
        except EngineError as exc:
            raise CannotRun(f"the graph cannot run: {exc}") from None
        return BatchRun(job.id, execution, {"graph_version": version.version}, deps)


def _prepare(
    job: Job, version_id: str, definition: dict[str, Any], deps: RunDeps, flow: Flow
) -> Execution:
    program = deps.programs.get(version_id, definition)
    for alias in program.plan.aliases:
        deps.resources.config.endpoint(alias)  # ConfigError if no longer configured
    sink = NodeSink(job.id, deps.writer)
    settings = ExecutionSettings(
        resources=deps.resources,
        observers=(sink, deps.metrics.nodes, FailedNodeLog()),
        priority=job.priority,
        flow=flow,
        output_limits=deps.limits,
        **deps.ledger(job),
        spans=engine_spans(deps.tracing),
    )
    return Execution(program, settings)


class BatchRun:
    """One batch job, started or resumed: each step is one item through the engine."""

    def __init__(
        self, job_id: str, execution: Execution, started: dict[str, Any], deps: RunDeps
    ) -> None:
        self.job_id = job_id
        self.execution = execution
        self.started = started
        self.humans = HumanInput(job_id, execution.plan.graph, deps)

    @property
    def can_wait(self) -> bool:
        return bool(self.humans.nodes)

    async def step(self, step: Step) -> ItemRow:
        raw = step.input
        try:
            inputs = check_inputs(
                self.execution.plan.graph.inputs, raw if isinstance(raw, dict) else {}
            )
        except InputError as exc:
            return ItemRow(
                self.job_id, step.index, ItemStatus.FAILED.value, None, str(exc), 0, 0, 0.0
            )
        restored = restored_records(step.stored) if step.stored else {}
        on_call(step.begin)  # running once its first model call has its slot
        while True:
            given = await self.humans.given(step.index)
            if isinstance(given, ItemRow):
                return given  # a human node timed out and fails its item
            result = await self.execution.run(inputs, str(step.index), {**restored, **given})
            awaiting = awaiting_input(result)
            if not awaiting:
                return item_row(self.job_id, step.index, result)
            if await self.humans.wait(step.index, awaiting):
                return waiting_row(self.job_id, step.index)
            restored = finished_records(result)  # an answer came meanwhile: go on from here


def item_row(job_id: str, index: int, result: RunResult) -> ItemRow:
    """The item's row; its usage counts the nodes restored from before a restart too (their
    records carry their usage)."""
    tokens_in, tokens_out, cost = result.usage_totals()
    error = None
    if not result.ok:
        failed = [result.records[node] for node in result.failed]
        error = "; ".join(f"{r.node}: {r.error_type}: {r.error}" for r in failed)
    status = (ItemStatus.SUCCEEDED if result.ok else ItemStatus.FAILED).value
    return ItemRow(
        job_id, index, status, result.outputs, error, tokens_in, tokens_out, cost,
        result.calls_saved,
    )  # fmt: skip
