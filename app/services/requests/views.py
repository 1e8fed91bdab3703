"""Node records as the API shows them, one shape for ``/v1/runs`` and for a job's items.

>>> node_view(NodeRecord("n", NodeStatus.SUCCEEDED, output="ok")).status  # doctest: +SKIP
'succeeded'
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from app.db.models import NodeResult
from app.engine import NodeRecord


@dataclass(frozen=True, slots=True)
class NodeUsage:
    """The model call of an ``llm`` node: which model, tokens, latency, queueing and cost."""

    alias: str
    model: str | None
    input_tokens: int
    output_tokens: int
    latency_s: float | None
    queued_s: float | None
    finish_reason: str | None
    cost: float


@dataclass(frozen=True, slots=True)
class NodeView:
    """How one node ended. ``inputs`` is ``None`` where it is not kept (a job's stored records
    keep it for failed nodes only); the times are wall-clock UTC."""

    node: str
    status: str
    output: Any
    error: str | None
    error_type: str | None
    attempts: int
    retries: list[str] | None
    duration_s: float | None
    started_at: datetime | None
    ended_at: datetime | None
    usage: NodeUsage | None
    inputs: dict[str, Any] | None


def node_view(record: NodeRecord) -> NodeView:
    """A record of a run that has just ended (its times are the engine's monotonic clock)."""
    to_wall = time.time() - time.monotonic()  # the engine's default clock is time.monotonic
    usage = record.usage
    return NodeView(
        node=record.node,
        status=record.status.value,
        output=record.output,
        error=record.error,
        error_type=record.error_type,
        attempts=record.attempts,
        retries=list(record.retries),
        duration_s=record.duration_s,
        started_at=_wall(record.started_at, to_wall),
        ended_at=_wall(record.ended_at, to_wall),
        usage=None
        if usage is None
        else NodeUsage(
            usage.alias,
            usage.model,
            usage.input_tokens,
            usage.output_tokens,
            usage.latency_s,
            usage.queued_s,
            usage.finish_reason,
            usage.cost,
        ),
        inputs=record.inputs,
    )


def stored_node_view(row: NodeResult) -> NodeView:
    """A job's stored node result: rendered inputs are kept for failed nodes only; rows
    written before retries were kept show ``retries`` as ``None``."""
    started = None if row.ended_s is None else row.ended_s - (row.duration_s or 0.0)
    return NodeView(
        node=row.node_id,
        status=row.status,
        output=row.output,
        error=row.error,
        error_type=row.error_type,
        attempts=row.attempts,
        retries=row.retries,
        duration_s=row.duration_s,
        started_at=_wall(started, 0.0),
        ended_at=_wall(row.ended_s, 0.0),
        usage=None if row.alias is None else _stored_usage(row, row.alias),
        inputs=row.inputs,
    )


def _stored_usage(row: NodeResult, alias: str) -> NodeUsage:
    return NodeUsage(
        alias,
        row.model,
        row.input_tokens,
        row.output_tokens,
        row.latency_s,
        row.queued_s,
        row.finish_reason,
        row.cost,
    )


def _wall(moment: float | None, offset: float) -> datetime | None:
    return None if moment is None else datetime.fromtimestamp(moment + offset, UTC)
