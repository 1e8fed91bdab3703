"""A job's Chrome trace (Perfetto, chrome://tracing), rebuilt from its stored node results.

Every stored node becomes a span (its end time and duration are stored), laid out by the
engine's :class:`~app.engine.TraceProfiler`: one lane group per endpoint alias with a thread
per concurrency slot (a call drawn from its slot to its answer, its wait for the slot apart),
counters of calls in flight and queued. Being built from the database,
a trace covers work done before a restart and by other processes too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import NodeResult
from app.db.repositories import graphs as graphs_repo
from app.db.repositories import results
from app.engine import LLMUsage, NodeRecord, NodeStatus, TraceProfiler
from app.services.errors import NotFound
from app.services.requests.jobs import find


async def job_trace(
    session: AsyncSession,
    tenant_id: str,
    job_id: str,
    after: int,
    items: int,
    slots: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """The trace of items ``after + 1`` to ``after + items`` of the job; ``slots`` is each
    alias's concurrency cap (its call lanes)."""
    job = await find(session, tenant_id, job_id)
    version = await graphs_repo.get_version_by_id(session, job.graph_version_id)
    if version is None:
        raise NotFound(f"the graph of job {job_id!r} is gone")
    ops = {node["id"]: node["op"] for node in version.definition.get("nodes", [])}
    rows = [r for r in await results.nodes_of_items(session, job_id, after, items) if _timed(r)]
    origin = min((_start(row) for row in rows), default=0.0)
    profiler = TraceProfiler(origin=origin, slots=slots)
    for row in rows:
        profiler.node_finished(
            str(row.item_index), _record(row), ops.get(row.node_id, "?"), row.alias
        )
    trace = profiler.to_dict()
    trace["metadata"].update(job_id=job_id, items={"after": after, "count": items})
    return trace


def _timed(row: NodeResult) -> bool:
    return row.ended_s is not None and row.duration_s is not None


def _start(row: NodeResult) -> float:
    return (row.ended_s or 0.0) - (row.duration_s or 0.0)


def _record(row: NodeResult) -> NodeRecord:
    usage = None
    if row.alias is not None:
        usage = LLMUsage(
            alias=row.alias,
            model=row.model or "",
            input_tokens=row.input_tokens,
            output_tokens=row.output_tokens,
            latency_s=row.latency_s or 0.0,
            finish_reason=None,
            cost=row.cost,
            queued_s=row.queued_s or 0.0,
        )
    return NodeRecord(
        row.node_id,
        NodeStatus(row.status),
        attempts=row.attempts,
        started_at=_start(row),
        ended_at=row.ended_s,
        usage=usage,
    )
