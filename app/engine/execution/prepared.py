"""A program prepared to run under resolved settings, once or for every item of a batch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from app.engine.checkpoint import CheckpointSession, CheckpointStore, FileCheckpointStore
from app.engine.errors import ExecutionError, NodeFailure
from app.engine.execution.context import RunContext
from app.engine.execution.observer import Observer
from app.engine.execution.program import Program
from app.engine.execution.scheduler import GraphRun
from app.engine.execution.settings import ExecutionSettings
from app.engine.ledger.runs import ledger_of
from app.engine.records import ForwardRecord, NodeRecord, NodeStatus, RunResult
from app.engine.resources.config import ResourceConfig
from app.engine.resources.fairness import NO_FLOW
from app.engine.resources.manager import ResourceManager, shared_manager
from app.engine.tools import registered_tools


class Execution:
    """Settings resolved once (resources, observers, tools, checkpoint store); runs many inputs.

    The plan is taken when the execution is prepared, so every item of a batch runs the same
    parameter values even if an optimizer changes them meanwhile.
    """

    def __init__(self, program: Program, settings: ExecutionSettings) -> None:
        self.program = program
        self.settings = settings
        self.plan = program.plan
        self.store = _checkpoint_store(settings)
        self.ctx = RunContext(
            manager=_manager(settings),
            max_retries=settings.max_retries,
            timeout_s=settings.timeout_s,
            priority=settings.priority or 0,
            flow=settings.flow or NO_FLOW,
            record=bool(settings.record),
            observers=_observers(settings),
            spans=settings.spans,
            tools=settings.tools if settings.tools is not None else registered_tools(),
            ledger=ledger_of(settings),
        )
        if settings.output_limits is not None:
            self.ctx.limits = settings.output_limits

    async def run(
        self, inputs: dict[str, Any], key: str, restored: dict[str, NodeRecord] | None = None
    ) -> RunResult:
        """Run on checked inputs; node failures are in the result, never raised.

        ``restored`` gives finished nodes (by id) from elsewhere, e.g. a database; they are
        not run again. Without it, the checkpoint store (if any) supplies them.
        """
        session = None
        if self.store is not None:
            session = CheckpointSession(self.store, key, self.plan.hash, inputs)
        run_state = GraphRun(self.plan, inputs, self.ctx, key, session, restored)
        try:
            return await run_state.execute()
        finally:
            if session is not None:
                await session.store.flush()
            if self.ctx.ledger is not None:
                await self.ctx.ledger.flush()

    def finish(self, result: RunResult) -> Any:
        """The caller-facing value of a run: outputs, a ForwardRecord, or ExecutionError."""
        outputs = self.program.unpack(result.outputs)
        if result.failed:
            raise ExecutionError(_failures(result), result.outputs, result)
        if self.settings.record:
            order = [step.id for step in self.plan.steps]
            traced = self.program.traced
            parameters = dict(traced.parameters) if traced is not None else {}
            return ForwardRecord(
                self.plan.graph, result.inputs, outputs, result.records, order,
                parameters, self.ctx.manager,
            )  # fmt: skip
        return outputs


def _failures(result: RunResult) -> list[NodeFailure]:
    return [
        NodeFailure(r.node, r.error or "", r.error_type or "", r.attempts)
        for r in result.records.values()
        if r.status is NodeStatus.FAILED
    ]


def _manager(settings: ExecutionSettings) -> ResourceManager | None:
    resources = settings.resources
    if resources is None or isinstance(resources, ResourceManager):
        return resources
    assert isinstance(resources, ResourceConfig)
    return shared_manager(resources)


def _observers(settings: ExecutionSettings) -> tuple[Observer, ...]:
    extra = (settings.profiler, settings.spans)
    return (*(settings.observers or ()), *(o for o in extra if o is not None))


def _checkpoint_store(settings: ExecutionSettings) -> CheckpointStore | None:
    store = settings.checkpoint
    if isinstance(store, str | Path):
        return FileCheckpointStore(store)
    return store
