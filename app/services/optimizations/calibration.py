"""The earlier runs a new run's expected spend learns from
(:func:`~app.services.optimization.expected.expected`): the tenant's last finished runs of
the same graph (any version) with comparable settings
(:func:`~app.services.optimization.expected.settings_key`) that ended on their own schedule
(``max_epochs``, ``early_stopped`` or ``target_reached``), each with the dry-run projection
its plan kept and what it spent per role, the test included. A run cut by its budget, stalled
or failed is left out: it says what its cap or fault stopped, not how the graph trains.
"""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Job
from app.db.repositories import results
from app.db.repositories.finished_runs import finished_runs
from app.engine.optimization.history import StopReason
from app.services.optimization.expected import MAX_RUNS, PastRun, settings_key
from app.services.optimization.spec import OptimizationSpec
from app.services.optimizations.plan import OPTIMIZATION, OptimizationPlan
from app.services.optimizations.progress import RUN_ITEM, RunRecord, stored_record

SCANNED = 50  # the newest finished runs of the graph looked at for comparable ones
ON_SCHEDULE = {StopReason.MAX_EPOCHS, StopReason.EARLY_STOPPED, StopReason.TARGET_REACHED}


async def past_runs(
    session: AsyncSession, tenant_id: str, graph_id: str, spec: OptimizationSpec
) -> list[PastRun]:
    """Up to ``MAX_RUNS`` comparable finished runs of the tenant's graph ``graph_id`` (the
    graph's stored id), the last finished first."""
    key, found = settings_key(spec), []
    jobs = await finished_runs(session, tenant_id, graph_id, OPTIMIZATION, SCANNED)
    for job, plan in _comparable(jobs, key):
        record = stored_record(await results.item_nodes(session, job.id, RUN_ITEM))
        if plan.projection is not None and record is not None and _on_schedule(record):
            found.append(PastRun(plan.projection, record.spent()))
        if len(found) == MAX_RUNS:
            break
    return found


def _comparable(jobs: list[Job], key: dict[str, object]) -> Iterator[tuple[Job, OptimizationPlan]]:
    for job in jobs:
        plan = OptimizationPlan.from_json(job.spec or {})
        if settings_key(plan.spec) == key:
            yield job, plan


def _on_schedule(record: RunRecord) -> bool:
    return record.tested and record.state.history.stop_reason in ON_SCHEDULE
