"""One node-result shape: the mapper pair between the engine's ``NodeRecord`` and its row.

:func:`node_row` is what the runner stores as a node ends; :func:`node_record` is what a resumed
run gets back for a node stored before, so the record a run reports (output, attempts,
duration, usage, retries) is the same whether the node ran in this process or in one that died.

    row = node_row("job-1", 0, record, "fast", ended_s=time.time())
    node_record(stored)  # NodeRecord(..., usage=LLMUsage(...), restored=True)
"""

from __future__ import annotations

from app.db.models import NodeResult
from app.db.repositories.results import NodeRow
from app.engine import LLMUsage, NodeRecord, NodeStatus


def node_row(
    job_id: str, index: int, record: NodeRecord, alias: str | None, ended_s: float | None
) -> NodeRow:
    """The row of one finished node of item ``index``; ``ended_s`` is when it ended (Unix s).

    Rendered inputs are kept for a failed node only (storing every node's would double what
    a job writes); the engine fills them, within the node output limit, when a node fails.
    """
    usage = record.usage
    return NodeRow(
        job_id=job_id,
        item_index=index,
        node_id=record.node,
        status=record.status.value,
        output=record.output,
        error=record.error,
        error_type=record.error_type,
        attempts=record.attempts,
        alias=alias,
        model=usage.model if usage else None,
        input_tokens=usage.input_tokens if usage else 0,
        output_tokens=usage.output_tokens if usage else 0,
        cost=usage.cost if usage else 0.0,
        duration_s=record.duration_s,
        latency_s=usage.latency_s if usage else None,
        queued_s=usage.queued_s if usage else None,
        ended_s=ended_s,
        finish_reason=usage.finish_reason if usage else None,
        retries=list(record.retries),
        inputs=record.inputs if record.status is NodeStatus.FAILED else None,
    )


def node_record(row: NodeResult | NodeRow) -> NodeRecord:
    """The record of a stored node, marked ``restored`` (the engine does not run it again)."""
    ended, duration = row.ended_s, row.duration_s
    started = None if ended is None or duration is None else ended - duration
    return NodeRecord(
        row.node_id,
        NodeStatus(row.status),
        output=row.output,
        error=row.error,
        error_type=row.error_type,
        attempts=row.attempts,
        started_at=started,
        ended_at=ended if started is not None else None,
        usage=_usage(row),
        retries=list(row.retries or ()),
        inputs=row.inputs,
        restored=True,
    )


def _usage(row: NodeResult | NodeRow) -> LLMUsage | None:
    if row.alias is None or row.model is None:
        return None
    return LLMUsage(
        alias=row.alias,
        model=row.model,
        input_tokens=row.input_tokens,
        output_tokens=row.output_tokens,
        latency_s=row.latency_s or 0.0,
        finish_reason=row.finish_reason,
        cost=row.cost,
        queued_s=row.queued_s or 0.0,
    )


def restored_records(rows: list[NodeResult]) -> dict[str, NodeRecord]:
    """An item's stored succeeded nodes, by id: what a resumed run does not run again."""
    return {
        row.node_id: node_record(row) for row in rows if row.status == NodeStatus.SUCCEEDED.value
    }
