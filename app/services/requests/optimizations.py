"""Optimization runs: a request checked against what it names and what its budget can pay
for, and stored as a job of the ``optimization`` kind with one item (the run); its status,
listing and cancel. ``dry_run`` answers the projection per role, its upper bound and the
spend expected from the tenant's earlier comparable runs, and writes nothing.

A request naming an unknown graph, version, parameter, dataset, alias or output, or whose
budget cannot pay for a baseline and three steps, is refused with one 422 naming every field,
and nothing is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Job, JobItem, NodeResult
from app.db.repositories import datasets as datasets_repo
from app.db.repositories import graphs as graphs_repo
from app.db.repositories import jobs as repo
from app.db.repositories import results
from app.engine import Graph
from app.services.commits import after_commit
from app.services.errors import Issue
from app.services.optimization.call_sizes import mean_input_chars
from app.services.optimization.checks import data_sizes, optimization_issues
from app.services.optimization.data import dataset_items
from app.services.optimization.expected import Expected, expected
from app.services.optimization.issues import invalid, parse
from app.services.optimization.projection import Projection, affordable, project
from app.services.optimization.spec import OptimizationSpec
from app.services.optimizations.calibration import past_runs
from app.services.optimizations.plan import OPTIMIZATION, OptimizationPlan
from app.services.optimizations.progress import RUN_ITEM, stored_record
from app.services.optimizations.view import OptimizationView, view_of
from app.services.requests import jobs
from app.services.requests.kind_jobs import find_kind_job, queue_kind_job

if TYPE_CHECKING:  # the runtime's runner imports the jobs service this one uses
    from app.services.runtime import Runtime


@dataclass(frozen=True, slots=True)
class Accepted:
    """A stored run (``job``), or for a dry run the projection (``projection``, the upper
    bound) and the spend expected (``expected``)."""

    job: Job | None
    projection: Projection | None
    expected: Expected | None = None


async def accept(
    runtime: Runtime, session: AsyncSession, tenant_id: str, body: Any,
    trace: dict[str, str] | None = None,
) -> Accepted:  # fmt: skip
    """Check a request body (parsed JSON); queue its run, or with ``dry_run`` only project it.
    The runner is woken once the run is committed; ``trace`` is the request's trace context."""
    spec = parse(OptimizationSpec, body)
    plan, projection = await _plan(session, tenant_id, spec, tuple(runtime.endpoints.endpoints))
    if spec.dry_run:
        past = await past_runs(session, tenant_id, plan.graph_id, spec)
        return Accepted(None, projection, expected(projection, past))
    job = await _store(session, tenant_id, plan, trace)
    if runtime.runner is not None:
        after_commit(session, runtime.runner.notify)
    return Accepted(job, projection)


async def _plan(
    session: AsyncSession, tenant_id: str, spec: OptimizationSpec, aliases: tuple[str, ...]
) -> tuple[OptimizationPlan, Projection]:
    record = await graphs_repo.find_graph(session, tenant_id, spec.graph_id)
    if record is None:
        raise invalid([Issue("graph_id", f"unknown graph {spec.graph_id!r}")])
    number = spec.version if spec.version is not None else record.active_version
    version = await graphs_repo.get_version(session, record.id, number)
    if version is None:
        raise invalid([Issue("version", f"graph {spec.graph_id!r} has no version {number}")])
    graph = Graph.model_validate(version.definition)
    sizes = await _dataset_sizes(session, tenant_id, spec)
    issues = optimization_issues(spec, graph, sizes, aliases)
    if issues:
        raise invalid(issues)
    parts = data_sizes(spec, sizes)
    projection = project(spec, graph, parts, await _input_chars(session, spec))
    issues = affordable(projection, spec.budget)
    if issues:
        raise invalid(issues)
    plan = OptimizationPlan(spec, record.id, version.id, version.version, parts, projection)
    return plan, projection


async def _dataset_sizes(
    session: AsyncSession, tenant_id: str, spec: OptimizationSpec
) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for dataset_id in {spec.train, spec.val, spec.test, spec.dataset} - {None}:
        found = await datasets_repo.get_dataset(session, tenant_id, str(dataset_id))
        if found is not None:
            sizes[found.id] = found.item_count
    return sizes


async def _input_chars(session: AsyncSession, spec: OptimizationSpec) -> int:
    items = await dataset_items(session, str(spec.train or spec.dataset))
    return mean_input_chars(item["input"] for item in items)


async def _store(
    session: AsyncSession, tenant_id: str, plan: OptimizationPlan, trace: dict[str, str] | None
) -> Job:
    steps = [{"run": plan.spec.graph_id}]  # one item, RUN_ITEM: the whole run
    return await queue_kind_job(
        session, tenant_id, plan.version_id, OPTIMIZATION, plan.to_json(), steps, trace
    )


async def find(session: AsyncSession, tenant_id: str, optimization_id: str) -> Job:
    """The tenant's run; another tenant's, or a job of another kind, is not found."""
    return await find_kind_job(session, tenant_id, optimization_id, OPTIMIZATION, "optimization")


async def status(session: AsyncSession, tenant_id: str, optimization_id: str) -> OptimizationView:
    """The run's state, stop reason, counters, best version, step history, test result and
    the live projection of its calls."""
    job = await find(session, tenant_id, optimization_id)
    return await _view(session, job, live=True)


async def _view(session: AsyncSession, job: Job, live: bool = False) -> OptimizationView:
    item = await repo.get_item(session, job.id, RUN_ITEM)
    record = stored_record(await results.item_nodes(session, job.id, RUN_ITEM))
    plan = OptimizationPlan.from_json(job.spec or {})
    projection = await _projection(session, plan) if live else None
    return view_of(job, plan, item, record, projection)


async def _projection(session: AsyncSession, plan: OptimizationPlan) -> Projection | None:
    """The run's dry-run projection, whose unit costs its live projection counts in calls:
    kept in the plan, or (a plan stored before it was) computed again without the items'
    input length, since tokens are not shown."""
    if plan.projection is not None:
        return plan.projection
    version = await graphs_repo.get_version_by_id(session, plan.version_id)
    if version is None or plan.sizes is None:
        return None
    return project(plan.spec, Graph.model_validate(version.definition), plan.sizes)


async def listing(
    session: AsyncSession, tenant_id: str, limit: int, before: str | None
) -> tuple[list[OptimizationView], str | None]:
    """Runs newest first, and the cursor of the next page."""
    found = await repo.list_jobs(session, tenant_id, limit, jobs.cursor(before), kind=OPTIMIZATION)
    nxt = f"{found[-1].created_at.isoformat()}~{found[-1].id}" if len(found) == limit else None
    ids = [job.id for job in found]
    items = await repo.items_at(session, ids, RUN_ITEM)
    nodes = await results.nodes_at(session, ids, RUN_ITEM)
    views = [_listed(job, items.get(job.id), nodes.get(job.id, [])) for job in found]
    return views, nxt


def _listed(job: Job, item: JobItem | None, nodes: list[NodeResult]) -> OptimizationView:
    """A listed run's view from its item and node rows read for the whole page at once."""
    return view_of(job, OptimizationPlan.from_json(job.spec or {}), item, stored_record(nodes))


async def cancel(
    runtime: Runtime, session: AsyncSession, tenant_id: str, optimization_id: str
) -> None:
    """Cancel it as a job is cancelled: the run stops after no more than its current call."""
    await find(session, tenant_id, optimization_id)
    await jobs.cancel(runtime, session, tenant_id, optimization_id)
