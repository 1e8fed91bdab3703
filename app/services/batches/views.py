"""The batch object as the OpenAI SDK reads it, from the batch row and its job.

Status: a queued job is ``validating`` (its lines were checked at create; it waits for a
runner), a running one ``in_progress``; an ended run is ``finalizing`` until its files exist,
then ``completed`` (``expired`` if the window closed on some line); a failed run is
``failed``; a cancelled one ``cancelling`` while its runner stops, then ``cancelled``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from app.db.models import BatchRecord, Job
from app.lifecycle import BatchStatus, JobStatus


def status_of(batch: BatchRecord, job: Job) -> BatchStatus:
    """The batch's status (see the module docstring)."""
    if job.status == JobStatus.QUEUED:
        return BatchStatus.VALIDATING
    if job.status == JobStatus.RUNNING:
        return BatchStatus.IN_PROGRESS
    if job.status == JobStatus.FAILED:
        return BatchStatus.FAILED
    if job.status == JobStatus.CANCELLED:
        done = batch.finalized_at is not None
        return BatchStatus.CANCELLED if done else BatchStatus.CANCELLING
    if batch.finalized_at is None:
        return BatchStatus.FINALIZING
    return BatchStatus.EXPIRED if batch.expired_lines else BatchStatus.COMPLETED


def batch_object(batch: BatchRecord, job: Job) -> dict[str, Any]:
    """``{id, object: "batch", endpoint, status, ..., request_counts, usage}``."""
    status = status_of(batch, job)
    return {
        "id": batch.id,
        "object": "batch",
        "endpoint": batch.endpoint,
        "input_file_id": batch.input_file_id,
        "completion_window": batch.completion_window,
        "status": status.value,
        "output_file_id": batch.output_file_id,
        "error_file_id": batch.error_file_id,
        "errors": _errors(job),
        "metadata": batch.batch_metadata,
        "request_counts": dict(total=job.item_count, completed=job.succeeded, failed=job.failed),
        "usage": _usage(batch, job),
        **_times(batch, job, status),
    }  # fmt: skip


def _errors(job: Job) -> dict[str, Any] | None:
    if job.status != JobStatus.FAILED:
        return None
    error = {"code": "batch_failed", "message": job.error or "the batch failed"}
    return {"object": "list", "data": [{**error, "line": None, "param": None}]}


def _usage(batch: BatchRecord, job: Job) -> dict[str, Any]:
    return {
        "input_tokens": job.input_tokens,
        "input_tokens_details": {"cached_tokens": batch.cached_tokens},
        "output_tokens": job.output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": job.input_tokens + job.output_tokens,
    }


def _times(batch: BatchRecord, job: Job, status: BatchStatus) -> dict[str, int | None]:
    ended = job.finished_at
    final = batch.finalized_at
    return {
        "created_at": _unix(batch.created_at),
        "in_progress_at": _unix(job.started_at),
        "expires_at": _unix(batch.expires_at),
        "finalizing_at": _unix(ended) if job.status == JobStatus.COMPLETED else None,
        "completed_at": _unix(final) if status is BatchStatus.COMPLETED else None,
        "failed_at": _unix(ended) if status is BatchStatus.FAILED else None,
        "expired_at": _unix(final) if status is BatchStatus.EXPIRED else None,
        "cancelling_at": _unix(batch.cancelling_at or ended)
        if job.status == JobStatus.CANCELLED else None,
        "cancelled_at": _unix(final) if status is BatchStatus.CANCELLED else None,
    }  # fmt: skip


def _unix(at: datetime | None) -> int | None:
    return None if at is None else int(at.timestamp())


def file_object(stored: Any) -> dict[str, Any]:
    """``{id, object: "file", bytes, created_at, filename, purpose, expires_at, status}``."""
    return {
        "id": stored.id,
        "object": "file",
        "bytes": stored.bytes,
        "created_at": _unix(stored.created_at),
        "filename": stored.filename,
        "purpose": stored.purpose,
        "expires_at": _unix(stored.expires_at),
        "status": "processed",
        "status_details": None,
    }
