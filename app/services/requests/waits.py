"""Human waits, as requests see them: list a job's waits, answer one (validated at once)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import HumanWait, Job
from app.db.repositories import graphs as graphs_repo
from app.db.repositories import jobs as jobs_repo
from app.db.repositories import waits as waits_repo
from app.engine.graph.answer_schema import answer_errors
from app.engine.graph.model import HumanNode
from app.lifecycle import TERMINAL_JOB_STATUSES
from app.services.errors import Conflict, InvalidInput, Issue, NotFound
from app.services.programs import ProgramCache
from app.services.requests.jobs import find


@dataclass(frozen=True, slots=True)
class WaitView:
    """One wait (or an answer kept for a wait to come)."""

    id: str
    item: int
    node: str
    status: str
    prompt: str | None
    answer: Any
    deadline: datetime | None
    waited_at: datetime | None
    answered_at: datetime | None


def wait_view(row: HumanWait) -> WaitView:
    return WaitView(
        row.id, row.item_index, row.node_id, row.status, row.prompt, row.answer,
        row.deadline, row.waited_at, row.answered_at,
    )  # fmt: skip


async def list_waits(session: AsyncSession, tenant_id: str, job_id: str) -> list[WaitView]:
    """The job's waits with their rendered prompts (another tenant's job is not found)."""
    await find(session, tenant_id, job_id)
    return [wait_view(row) for row in await waits_repo.waits_of(session, job_id)]


async def answer(
    session: AsyncSession,
    programs: ProgramCache,
    tenant_id: str,
    key: tuple[str, int, str],
    value: Any,
) -> WaitView:
    """Answer the wait ``key`` (job id, item index, node id): checked against the node's
    schema now; kept if the item does not wait yet; a second answer is a conflict. The
    node comes from ``programs``: a graph is parsed once per process, not per answer."""
    job_id, index, node_id = key
    job = await find(session, tenant_id, job_id)
    node = await _human_node(session, programs, job, node_id)
    if await jobs_repo.get_item(session, job_id, index) is None:
        raise NotFound(f"job {job_id!r} has no item {index}")
    issues = [Issue(f, m, node_id) for f, m in answer_errors(node.schema_, value)]
    if issues:
        raise InvalidInput(f"the answer does not match the schema of node {node_id!r}", issues)
    if job.status in TERMINAL_JOB_STATUSES:
        raise Conflict(f"job {job_id!r} has ended ({job.status})")
    row, new = await waits_repo.answer(session, job_id, index, node_id, value)
    if not new:
        raise Conflict(f"item {index} of job {job_id!r} at node {node_id!r} is {row.status}")
    return wait_view(row)


async def _human_node(
    session: AsyncSession, programs: ProgramCache, job: Job, node_id: str
) -> HumanNode:
    version = None
    if job.graph_version_id is not None:
        version = await graphs_repo.get_version_by_id(session, job.graph_version_id)
    node = None
    if version is not None:
        graph = programs.get(version.id, version.definition).plan.graph
        with contextlib.suppress(KeyError):
            node = graph.node(node_id)
    if not isinstance(node, HumanNode):
        raise NotFound(f"job {job.id!r} has no human node {node_id!r}")
    return node
