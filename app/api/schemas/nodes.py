"""The one API model of a node record (``/v1/runs`` and ``/v1/jobs/{id}/items/{i}``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class NodeUsageOut(BaseModel):
    """The model call of an ``llm`` node."""

    model_config = ConfigDict(from_attributes=True)

    alias: str
    model: str | None
    input_tokens: int
    output_tokens: int
    latency_s: float | None
    queued_s: float | None = Field(description="waiting for a concurrency slot or rate budget")
    finish_reason: str | None = Field(description="why the model stopped (stop, length, ...)")
    cost: float


class NodeRecordOut(BaseModel):
    """How one node ended: status, output or error, attempts, why each retried attempt failed,
    timing, usage and the rendered inputs (a job's records keep those of failed nodes only)."""

    model_config = ConfigDict(from_attributes=True)

    node: str
    status: str = Field(description="succeeded, failed, cancelled or skipped")
    output: Any = None
    error: str | None
    error_type: str | None
    attempts: int
    retries: list[str] | None = Field(
        description="why each retried attempt failed; null for job records stored before "
        "retries were kept"
    )
    duration_s: float | None
    started_at: datetime | None
    ended_at: datetime | None
    usage: NodeUsageOut | None
    inputs: dict[str, Any] | None = Field(
        description="the node's rendered inputs (prompt, ...); a job's records keep them for "
        "failed nodes only, within the node output limit"
    )
