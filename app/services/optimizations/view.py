"""What ``GET /v1/optimizations/{id}`` shows of a run: its state (from the job's status and
how its one item ended), stop reason and root error, counters per role, the best version with
its validation score and interval, every step's proposals and the gate's decision, the
test result, and the live projection of its calls
(:func:`~app.services.optimization.live.live_projection`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.db.models import Job, JobItem
from app.engine.optimization.history import StepRecord
from app.engine.optimization.state import TrainerState
from app.engine.optimization.stats import bootstrap_interval
from app.lifecycle import TERMINAL_JOB_STATUSES, ItemStatus, JobStatus, OptimizationState
from app.services.optimization.live import LiveProjection, live_projection
from app.services.optimization.projection import Projection
from app.services.optimizations.plan import OptimizationPlan
from app.services.optimizations.progress import RunRecord

_BY_JOB = {
    JobStatus.UPLOADING: OptimizationState.QUEUED,
    JobStatus.QUEUED: OptimizationState.QUEUED,
    JobStatus.RUNNING: OptimizationState.RUNNING,
    JobStatus.FAILED: OptimizationState.FAILED,
    JobStatus.CANCELLED: OptimizationState.CANCELLED,
}


@dataclass(frozen=True, slots=True)
class BestVersion:
    version: int
    score: float | None
    low: float | None
    high: float | None


@dataclass(frozen=True, slots=True)
class OptimizationView:
    id: str
    state: str
    graph_id: str
    version: int
    stop_reason: str | None
    error: str | None
    step: int
    roles: dict[str, dict[str, float]]
    best: BestVersion
    steps: list[dict[str, Any]]
    test: dict[str, Any] | None
    projection: LiveProjection | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


def state_of(job_status: str, item_status: str | None) -> OptimizationState:
    """The run's state: a completed job succeeded if its run (its one item) did.

    >>> state_of("completed", "failed").value, state_of("running", "running").value
    ('failed', 'running')
    """
    if job_status != JobStatus.COMPLETED:
        return _BY_JOB[JobStatus(job_status)]
    ok = item_status == ItemStatus.SUCCEEDED
    return OptimizationState.SUCCEEDED if ok else OptimizationState.FAILED


def states(counts: dict[tuple[str, str], int]) -> dict[str, int]:
    """Runs by state, from counts by (job status, item status)."""
    found: dict[str, int] = {}
    for (job_status, item_status), count in counts.items():
        state = state_of(job_status, item_status).value
        found[state] = found.get(state, 0) + count
    return found


def view_of(
    job: Job, plan: OptimizationPlan, item: JobItem | None, record: RunRecord | None,
    projection: Projection | None = None,
) -> OptimizationView:  # fmt: skip
    """The run as ``GET`` shows it; with its dry-run ``projection``, its live projection."""
    history = None if record is None else record.state.history
    stop = None if history is None or history.stop_reason is None else history.stop_reason.value
    error = job.error or (item.error if item is not None else None)
    if error is None and history is not None:
        error = history.error
    state = state_of(job.status, None if item is None else item.status).value
    steps = [] if record is None else [_step(s, record) for s in record.state.history.steps]
    return OptimizationView(
        job.id, state, plan.graph_id, plan.version, stop, error,
        0 if record is None else record.state.step, _roles(record), _best(plan, record), steps,
        None if record is None else record.test, _live(job, record, projection),
        job.created_at, job.started_at, job.finished_at,
    )  # fmt: skip


def _live(
    job: Job, record: RunRecord | None, projection: Projection | None
) -> LiveProjection | None:
    if projection is None:
        return None
    ended = job.status in TERMINAL_JOB_STATUSES
    if record is None:
        return live_projection(projection, TrainerState(), ended=ended)
    tested = record.test_usage if record.tested else None
    return live_projection(projection, record.state, tested, ended=ended)


def _roles(record: RunRecord | None) -> dict[str, dict[str, float]]:
    """Calls, tokens and cost per role, the test's calls included."""
    return {} if record is None else record.spent()


def _best(plan: OptimizationPlan, record: RunRecord | None) -> BestVersion:
    if record is None:
        return BestVersion(plan.version, None, None, None)
    history = record.state.history
    number = record.versions.get(history.best_step or 0, plan.version)
    scores = record.state.best_scores
    if not scores:
        return BestVersion(number, history.best_score, None, None)
    low, high = bootstrap_interval(scores, seed=plan.spec.seed)
    return BestVersion(number, history.best_score, low, high)


def _step(step: StepRecord, record: RunRecord) -> dict[str, Any]:
    proposals = [
        {"parameter": p.parameter, "diff": p.diff, "edit_ratio": p.edit_ratio,
         "feedback_count": p.feedback_count}
        for p in step.proposals
    ]  # fmt: skip
    return {
        "step": step.step, "epoch": step.epoch, "scores": step.scores, "proposals": proposals,
        "rejections": step.rejections, "delta": step.delta, "low": step.low, "high": step.high,
        "accepted": step.accepted, "reason": step.reason, "score": step.score,
        "version": record.versions.get(step.step), "errors": step.errors, "calls": step.calls,
    }  # fmt: skip
