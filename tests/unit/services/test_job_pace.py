"""A job's throughput and ETA count the items that were run, not those a cancel closed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.db.models import Job
from app.lifecycle import JobStatus
from app.services.progress import counts

START = datetime(2026, 1, 1, tzinfo=UTC)


def job(status: JobStatus, *, succeeded: int, failed: int = 0, cancelled: int = 0) -> Job:
    total = 100
    running = total - succeeded - failed - cancelled if status == JobStatus.RUNNING else 0
    return Job(
        status=status,
        item_count=total,
        running=running,
        succeeded=succeeded,
        failed=failed,
        cancelled=cancelled,
        started_at=START,
        finished_at=START + timedelta(seconds=10),
    )


def test_throughput_after_a_cancel_counts_only_the_items_that_ran() -> None:
    view = counts(job(JobStatus.CANCELLED, succeeded=8, failed=2, cancelled=90))
    assert view["throughput_per_s"] == 1.0  # 10 items run in 10 s; the 90 cancelled took no time
    assert view["eta_s"] == 0.0


def test_a_job_cancelled_before_any_item_ran_has_no_throughput() -> None:
    view = counts(job(JobStatus.CANCELLED, succeeded=0, cancelled=100))
    assert (view["throughput_per_s"], view["eta_s"]) == (None, None)


def test_a_finished_job_without_cancels_keeps_its_throughput() -> None:
    view = counts(job(JobStatus.COMPLETED, succeeded=95, failed=5))
    assert (view["throughput_per_s"], view["eta_s"]) == (10.0, 0.0)
