"""JSON views of engine records, shared by the runs and jobs APIs."""

from __future__ import annotations

from typing import Any

from app.engine import NodeRecord


def node_view(record: NodeRecord) -> dict[str, Any]:
    """What a client sees of one node: status, output or error, attempts, timing and usage."""
    view: dict[str, Any] = {
        "status": record.status.value,
        "output": record.output,
        "error": record.error,
        "error_type": record.error_type,
        "attempts": record.attempts,
        "retries": list(record.retries),
        "duration_s": record.duration_s,
    }
    if record.usage is not None:
        usage = record.usage
        view["usage"] = {
            "alias": usage.alias,
            "model": usage.model,
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "latency_s": usage.latency_s,
            "queued_s": usage.queued_s,
            "finish_reason": usage.finish_reason,
            "cost": usage.cost,
        }
    if record.inputs is not None:
        view["inputs"] = record.inputs
    return view
