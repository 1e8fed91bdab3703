"""Execute a program once: resolve resources, checkpoint and observers, then run the graph."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from app.engine.checkpoint import CheckpointSession, FileCheckpointStore
from app.engine.errors import ExecutionError, NodeFailure
from app.engine.execution.context import RunContext
from app.engine.execution.observer import Observer
from app.engine.execution.program import Program
from app.engine.execution.records import ForwardRecord, NodeStatus, RunResult
from app.engine.execution.scheduler import GraphRun
from app.engine.execution.settings import ExecutionSettings
from app.engine.resources.config import ResourceConfig
from app.engine.resources.manager import ResourceManager, shared_manager
from app.engine.tools import registered_tools


async def execute(
    program: Program, inputs: dict[str, Any], effective: ExecutionSettings, key: str
) -> RunResult:
    """Run ``program`` on checked inputs under resolved settings; never raises for node errors."""
    plan = program.plan
    session = _checkpoint_session(effective, key, plan.hash, inputs)
    ctx = RunContext(
        manager=_manager(effective),
        max_retries=effective.max_retries,
        timeout_s=effective.timeout_s,
        priority=effective.priority or 0,
        record=bool(effective.record),
        observers=_observers(effective),
        tools=effective.tools if effective.tools is not None else registered_tools(),
        checkpoint=session,
        label=key,
    )
    run_state = GraphRun(plan, inputs, ctx, session.restored() if session else None)
    try:
        return await run_state.execute()
    finally:
        if session is not None:
            await session.store.flush()


def finish(program: Program, result: RunResult, effective: ExecutionSettings) -> Any:
    """The caller-facing value of a run: outputs, a ForwardRecord, or ExecutionError."""
    outputs = program.unpack(result.outputs)
    if result.failed:
        failures = [
            NodeFailure(r.node, r.error or "", r.error_type or "", r.attempts)
            for r in result.records.values()
            if r.status is NodeStatus.FAILED
        ]
        raise ExecutionError(failures, result.outputs, result)
    if effective.record:
        order = [step.id for step in program.plan.steps]
        return ForwardRecord(program.plan.graph, result.inputs, outputs, result.records, order)
    return outputs


def _manager(effective: ExecutionSettings) -> ResourceManager | None:
    resources = effective.resources
    if resources is None or isinstance(resources, ResourceManager):
        return resources
    assert isinstance(resources, ResourceConfig)
    return shared_manager(resources)


def _observers(effective: ExecutionSettings) -> tuple[Observer, ...]:
    observers = tuple(effective.observers or ())
    return (*observers, effective.profiler) if effective.profiler is not None else observers


def _checkpoint_session(
    effective: ExecutionSettings, key: str, graph_hash: str, inputs: dict[str, Any]
) -> CheckpointSession | None:
    store = effective.checkpoint
    if store is None:
        return None
    if isinstance(store, str | Path):
        store = FileCheckpointStore(store)
    return CheckpointSession(store, key, graph_hash, inputs)
