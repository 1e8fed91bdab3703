"""What the dashboard's pages show, read from the same repositories and views as the API.

Each page is a fixed number of queries, whatever the number of jobs, items or nodes on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.repositories import dashboard as repo
from app.db.repositories import events as events_repo
from app.db.repositories import graphs as graphs_repo
from app.db.repositories import jobs as jobs_repo
from app.db.repositories import node_counts
from app.db.repositories.dashboard import JobFilter
from app.engine import OutputLimits
from app.lifecycle import JobStatus
from app.services.errors import InvalidInput, Issue
from app.services.job_views import ItemView, JobView, item_view, job_view
from app.services.programs import ProgramCache
from app.services.requests import jobs
from app.services.requests.item_prompts import RenderedPrompt, rendered_prompts
from app.services.requests.jobs import ItemDetail, ResultsPage
from app.services.runner.kinds import BATCH

FAILED_SHOWN = 50


@dataclass(frozen=True, slots=True)
class JobsPage:
    """A page of the jobs list: the jobs, the cursor of the next page, counts by status."""

    jobs: list[JobView]
    next: str | None
    counts: dict[str, int]


@dataclass(frozen=True, slots=True)
class JobPage:
    """A job with its graph's definition, each node's state counts, failed items and the id
    of its newest event (where the page's live stream starts)."""

    job: JobView
    definition: dict[str, Any]
    node_counts: dict[str, dict[str, int]]
    failed: list[ItemView]
    items: ResultsPage
    last_event_id: int


@dataclass(frozen=True, slots=True)
class ItemPage:
    """An item with every stored node record and each llm node's rendered prompt."""

    item: ItemDetail
    prompts: dict[str, RenderedPrompt]


def job_filter(
    status: str | None, graph: str | None, since: str | None, until: str | None
) -> tuple[JobFilter, str | None]:
    """The filter a form asks for (``graph`` is resolved later); ``InvalidInput`` names a bad
    time field."""
    if status is not None and status not in {s.value for s in JobStatus}:
        raise InvalidInput(f"unknown status {status!r}", [Issue("status", "unknown status")])
    return JobFilter(status, None, _moment("since", since), _moment("until", until)), graph


def _moment(field: str, text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(
            f"{field}: not an ISO 8601 time", [Issue(field, "not an ISO 8601 time")]
        ) from None


async def jobs_page(
    session: AsyncSession,
    tenant_id: str,
    where: JobFilter,
    graph: str | None,
    limit: int,
    before: str | None,
) -> JobsPage:
    """The tenant's batch jobs matching ``where`` (and ``graph``, an id or a name)."""
    counts = await repo.status_counts(session, tenant_id, BATCH)
    if graph:
        record = await graphs_repo.find_graph(session, tenant_id, graph)
        if record is None:
            return JobsPage([], None, counts)
        where = JobFilter(where.status, record.id, where.since, where.until)
    found = await repo.filtered_jobs(session, tenant_id, BATCH, where, limit, jobs.cursor(before))
    nxt = f"{found[-1].created_at.isoformat()}~{found[-1].id}" if len(found) == limit else None
    names = await jobs_repo.graph_versions_of(session, {str(j.graph_version_id) for j in found})
    return JobsPage([job_view(j, *names[str(j.graph_version_id)]) for j in found], nxt, counts)


async def status_counts(session: AsyncSession, tenant_id: str) -> dict[str, int]:
    """How many of the tenant's batch jobs each status has."""
    return await repo.status_counts(session, tenant_id, BATCH)


async def job_page(
    session: AsyncSession, tenant_id: str, job_id: str, after: int, items: int
) -> JobPage:
    """Everything the job page shows; ``NotFound`` for another tenant's job."""
    job, view = await jobs.batch_job(session, tenant_id, job_id)
    version = await graphs_repo.get_version_by_id(session, job.graph_version_id)
    failed = await repo.failed_items(session, job_id, FAILED_SHOWN)
    return JobPage(
        job=view,
        definition=version.definition if version is not None else {},
        node_counts=await node_counts.of_job(session, job_id),
        failed=[item_view(item) for item in failed],
        items=await jobs.items_page(session, job_id, after, items),
        last_event_id=await events_repo.last_event_id(session, job_id),
    )


async def job_graph(
    session: AsyncSession, tenant_id: str, job_id: str
) -> tuple[dict[str, Any], dict[str, dict[str, int]]]:
    """The job's graph definition and each node's state counts."""
    job = await jobs.find(session, tenant_id, job_id)
    version = await graphs_repo.get_version_by_id(session, job.graph_version_id)
    definition = version.definition if version is not None else {}
    return definition, await node_counts.of_job(session, job_id)


async def item_page(
    session: AsyncSession,
    programs: ProgramCache,
    limits: OutputLimits,
    key: tuple[str, str, int],
) -> ItemPage:
    """The item ``key`` (tenant id, job id, index) and the prompt of each of its llm nodes,
    rendered again from the job's graph version and the stored values it read (a run of
    another kind than a batch has no per-item prompts)."""
    tenant_id, job_id, index = key
    job = await jobs.find(session, tenant_id, job_id)
    detail = await jobs.detail_of(session, job, index)
    version = await graphs_repo.get_version_by_id(session, job.graph_version_id)
    if version is None or job.kind != BATCH:
        return ItemPage(detail, {})
    plan = programs.get(version.id, version.definition).plan
    outputs = {node.node: (node.status, node.output) for node in detail.nodes}
    return ItemPage(detail, rendered_prompts(plan, detail.input, outputs, limits))


NODE_FAILURES_SHOWN = 5


async def node_stats(
    session: AsyncSession, tenant_id: str, job_id: str, node_id: str
) -> repo.NodeStats:
    """A node of a job: its duration percentiles and failures (one query; a job of another
    tenant, or a node with no results, reads as no results)."""
    return await repo.node_stats(session, tenant_id, job_id, node_id, NODE_FAILURES_SHOWN)
