"""Jobs API models."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field

from app.api.schemas.common import INT32_MAX, RequestedVersion
from app.api.schemas.nodes import NodeRecordOut


class JobRequest(BaseModel):
    """A job with its inputs in the body (for a file of inputs, upload JSONL as multipart)."""

    model_config = ConfigDict(extra="forbid")

    graph_id: str = Field(min_length=1, max_length=200, description="graph id or name")
    version: RequestedVersion = None
    inputs: list[Any] = Field(
        min_length=1,
        description=(
            "one object per item: the graph's inputs, and optionally the row's `custom_id` "
            "(unique in the job) and `metadata` (up to 16 string values), kept with its result"
        ),
    )
    priority: int = Field(
        default=0, ge=-1_000, le=1_000, strict=True, description="lower runs first"
    )
    webhook_url: AnyHttpUrl | None = None
    cache: Literal["off", "read", "read_write"] | None = Field(
        default=None, description="response ledger: off, read or read_write (docs/ledger.md)"
    )
    replay: Literal["strict"] | None = Field(
        default=None, description="strict: every model call must be answered by the ledger"
    )


class JobForm(JobRequest):
    """The text fields of a multipart JSONL upload (numbers arrive as text there)."""

    version: int | None = Field(default=None, ge=1, le=INT32_MAX)
    inputs: list[Any] = Field(default_factory=list, description="the JSONL file, not a field")
    priority: int = Field(default=0, ge=-1_000, le=1_000, description="lower runs first")


class Counts(BaseModel):
    total: int
    pending: int
    running: int
    waiting: int = 0  # items at a human node, holding no slot
    succeeded: int
    failed: int
    cancelled: int


class JobStatus(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    graph_id: str | None
    graph_version: int | None
    status: str
    priority: int
    webhook_url: str | None
    webhook_state: str | None = Field(description="pending, delivered or failed once ended")
    webhook_attempts: int
    counts: Counts
    throughput_per_s: float | None
    eta_s: float | None
    usage: dict[str, Any]
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    cache: str | None = Field(default=None, description="the job's response ledger mode")
    replay: str | None = Field(default=None, description="strict replay, if asked")
    retry_of: str | None = Field(
        default=None, description="the job whose failed items this job runs again"
    )


class JobPage(BaseModel):
    items: list[JobStatus]
    next: str | None


class ResultItem(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    index: int
    status: str
    output: Any = None
    error: str | None = None
    custom_id: str | None = Field(default=None, description="the row's custom_id, if it had one")
    metadata: dict[str, str] | None = Field(
        default=None, description="the row's metadata, if it had any"
    )


class ResultPage(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    items: list[ResultItem]
    next: int | None


class ItemDetail(ResultItem):
    input: Any
    nodes: list[NodeRecordOut]


class WebhookAttemptOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    attempt: int
    attempted_at: datetime
    status_code: int | None
    error: str | None
    duration_s: float


class WebhookDeliveries(BaseModel):
    """A job's webhook: where it goes, how delivery stands, every attempt so far."""

    model_config = ConfigDict(from_attributes=True)

    url: str | None
    state: str | None
    attempts: list[WebhookAttemptOut]


class WebhookSecret(BaseModel):
    """Verify webhook signatures with this (see ``app.signing.verify``)."""

    secret: str
