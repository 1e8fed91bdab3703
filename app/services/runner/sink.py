"""Turn engine node records into database rows as nodes finish."""

from __future__ import annotations

import logging
import time
from typing import Any

from app.db.models import NodeResult
from app.db.repositories.results import NodeRow
from app.engine import NodeRecord, NodeStatus
from app.services.runner.writer import ResultWriter

log = logging.getLogger(__name__)


class NodeSink:
    """An engine :class:`~app.engine.Observer` that queues every finished node of one job.

    The run label is the item index, so each record becomes the row (job, item, node).
    """

    def __init__(self, job_id: str, writer: ResultWriter) -> None:
        self.job_id = job_id
        self.writer = writer

    def node_finished(self, run: str, record: NodeRecord, op: str, alias: str | None) -> None:
        if record.restored:
            return  # already stored before a restart
        self.writer.node(node_row(self.job_id, int(run), record, alias))


class FailedNodeLog:
    """An engine observer that logs every failed node, with its job, item and node as fields
    (the job and item come from the task's logging context)."""

    def node_finished(self, run: str, record: NodeRecord, op: str, alias: str | None) -> None:
        if record.status is not NodeStatus.FAILED or record.restored:
            return
        fields = {"node": record.node, "alias": alias, "error_type": record.error_type}
        log.info("node %s failed: %s", record.node, (record.error or "")[:500], extra=fields)


def node_row(job_id: str, index: int, record: NodeRecord, alias: str | None) -> NodeRow:
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
        ended_s=time.time(),  # called as the node ends
    )


def restored_records(rows: list[NodeResult]) -> dict[str, NodeRecord]:
    """Stored succeeded nodes of an item, as records the engine will not run again."""
    return {
        row.node_id: NodeRecord(row.node_id, NodeStatus.SUCCEEDED, output=row.output, restored=True)
        for row in rows
        if row.status == NodeStatus.SUCCEEDED.value
    }


def record_view(row: NodeResult) -> dict[str, Any]:
    """A stored node result as the API shows it."""
    return {
        "node": row.node_id,
        "status": row.status,
        "output": row.output,
        "error": row.error,
        "error_type": row.error_type,
        "attempts": row.attempts,
        "duration_s": row.duration_s,
        "usage": None
        if row.alias is None
        else {
            "alias": row.alias,
            "model": row.model,
            "input_tokens": row.input_tokens,
            "output_tokens": row.output_tokens,
            "latency_s": row.latency_s,
            "queued_s": row.queued_s,
            "cost": row.cost,
        },
    }
