"""Jobs and their items as typed records: what the jobs API shows and what a webhook carries.

Services return these; ``app/api/schemas`` maps them to response models, and webhooks send
``as_json``.

>>> ItemView(3, "succeeded", {"answer": "yes"}, None).index
3
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from app.db.models import Job, JobItem, WebhookAttempt
from app.services.progress import counts


@dataclass(frozen=True, slots=True)
class JobView:
    """A job with its progress (``counts``, throughput, ETA, usage) and webhook state."""

    id: str
    graph_id: str | None
    graph_version: int | None
    status: str
    priority: int
    webhook_url: str | None
    webhook_state: str | None
    webhook_attempts: int
    counts: dict[str, int]
    throughput_per_s: float | None
    eta_s: float | None
    usage: dict[str, Any]
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    cache: str | None = None
    replay: str | None = None
    retry_of: str | None = None  # the job whose failed items this one runs again

    def as_json(self) -> dict[str, Any]:
        """A plain dict (times stay ``datetime``: the encoder formats them)."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class ItemView:
    """One item's outcome: its status, output and error, and the identity (``custom_id``,
    ``metadata``) it was submitted with."""

    index: int
    status: str
    output: Any
    error: str | None
    custom_id: str | None = None
    metadata: dict[str, str] | None = None


@dataclass(frozen=True, slots=True)
class AttemptView:
    """One try at delivering a job's webhook."""

    attempt: int
    attempted_at: datetime
    status_code: int | None
    error: str | None
    duration_s: float


def job_view(job: Job, graph_id: str | None, graph_version: int | None) -> JobView:
    """The view of a job row and the id and version of its graph."""
    return JobView(
        id=job.id,
        graph_id=graph_id,
        graph_version=graph_version,
        status=job.status,
        priority=job.priority,
        webhook_url=job.webhook_url,
        webhook_state=job.webhook_state,
        webhook_attempts=job.webhook_attempts,
        **counts(job),
        error=job.error,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        cache=job.cache,
        replay=job.replay,
        retry_of=job.retry_of,
    )


def item_view(item: JobItem) -> ItemView:
    """The outcome of one stored item."""
    return ItemView(
        item.item_index, item.status, item.output, item.error, item.custom_id, item.item_metadata
    )


def attempt_view(attempt: WebhookAttempt) -> AttemptView:
    """One stored webhook attempt."""
    return AttemptView(
        attempt.attempt,
        attempt.attempted_at,
        attempt.status_code,
        attempt.error,
        attempt.duration_s,
    )
