"""A run's progress as users see it: item counts, throughput, ETA, tokens and cost.

Read from the job row alone (its counters move with every write batch), so the status poll and
the runner's ``progress`` and terminal events all say the same thing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from app.db.models import Job
from app.lifecycle import TERMINAL_JOB_STATUSES, ItemStatus, JobStatus


def counts(job: Job) -> dict[str, Any]:
    """The job's progress: ``counts``, ``throughput_per_s``, ``eta_s`` and ``usage``.

    ``pending`` is what is neither running, waiting nor ended.
    """
    done = job.succeeded + job.failed + job.cancelled
    waiting = job.waiting or 0  # (None on a row not yet flushed)
    pending = max(0, job.item_count - job.running - waiting - done)
    # Cancelled items took no time: counted as done, they would inflate the throughput.
    throughput, eta = _pace(job, job.succeeded + job.failed, pending + job.running)
    return {
        "counts": {
            "total": job.item_count,
            ItemStatus.PENDING: pending,
            ItemStatus.RUNNING: job.running,
            ItemStatus.WAITING: waiting,  # at a human node, holding no slot
            ItemStatus.SUCCEEDED: job.succeeded,
            ItemStatus.FAILED: job.failed,
            ItemStatus.CANCELLED: job.cancelled,
        },
        "throughput_per_s": throughput,
        "eta_s": eta,
        "usage": {
            "input_tokens": job.input_tokens,
            "output_tokens": job.output_tokens,
            "cost": job.cost,
            "calls_saved": job.calls_saved,  # answered from the response ledger
        },
    }


def _pace(job: Job, ran: int, remaining: int) -> tuple[float | None, float | None]:
    if job.started_at is None or ran == 0:
        return None, None
    end = job.finished_at or datetime.now(UTC)
    elapsed = (end - _aware(job.started_at)).total_seconds()
    if elapsed <= 0:
        return None, None
    rate = ran / elapsed
    return rate, (remaining / rate if JobStatus(job.status) not in TERMINAL_JOB_STATUSES else 0.0)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
