"""Evaluations: a request checked against what it names and stored as a job of the
``evaluation`` kind, its status and result, its listing and cancel.

A request that names an unknown graph, version, dataset, alias or output is refused with one
422 naming every field, and nothing is written.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass, fields
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import GraphVersion, Job
from app.db.repositories import datasets as datasets_repo
from app.db.repositories import graphs as graphs_repo
from app.db.repositories import jobs as repo
from app.engine import Graph
from app.engine.optimization.budget import Usage
from app.engine.optimization.roles import Role
from app.lifecycle import ItemStatus, JobStatus
from app.services.commits import after_commit
from app.services.errors import Issue
from app.services.evaluations.kind import EVALUATION
from app.services.evaluations.layout import EvaluationPlan, items_of
from app.services.evaluations.results import EvaluationResult, ScoredItem, result_of
from app.services.optimization.checks import evaluation_issues
from app.services.optimization.data import dataset_items
from app.services.optimization.issues import invalid, parse
from app.services.optimization.spec import EvaluationSpec
from app.services.progress import counts
from app.services.requests import jobs
from app.services.requests.kind_jobs import find_kind_job, queue_kind_job

if TYPE_CHECKING:  # the runtime's runner imports the jobs service this one uses
    from app.services.runtime import Runtime

PAGE = 1_000
ROLES = (Role.TASK, Role.JUDGE)  # an item's output holds its usage by role (evaluations/kind.py)
SPENT = tuple(field.name for field in fields(Usage))
USAGE_PATHS = [("usage", role.value, name) for role in ROLES for name in SPENT]


@dataclass(frozen=True, slots=True)
class EvaluationView:
    """An evaluation's state and progress; ``result`` once it completed."""

    id: str
    status: str
    graph_id: str
    versions: list[int]
    dataset: str
    seed: int
    counts: dict[str, int]
    usage: dict[str, Any]
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    result: EvaluationResult | None = None


async def accept(
    runtime: Runtime, session: AsyncSession, tenant_id: str, body: Any,
    trace: dict[str, str] | None = None,
) -> Job:  # fmt: skip
    """Check a request body (parsed JSON) and queue its evaluation; the runner is woken once
    it is committed. ``trace`` is the request's trace context."""
    spec = parse(EvaluationSpec, body)
    plan = await _plan(session, tenant_id, spec, tuple(runtime.endpoints.endpoints))
    job = await _store(session, tenant_id, plan, trace)
    runner = runtime.runner
    if runner is not None:
        after_commit(session, runner.notify)
    return job


async def _plan(
    session: AsyncSession, tenant_id: str, spec: EvaluationSpec, aliases: tuple[str, ...]
) -> EvaluationPlan:
    record = await graphs_repo.find_graph(session, tenant_id, spec.graph_id)
    found: list[GraphVersion] = []
    issues: list[Issue] = []
    if record is None:
        issues.append(Issue("graph_id", f"unknown graph {spec.graph_id!r}"))
    else:
        for field, number in _asked(spec, record.active_version):
            version = await graphs_repo.get_version(session, record.id, number)
            if version is None:
                issues.append(Issue(field, f"graph {spec.graph_id!r} has no version {number}"))
            else:
                found.append(version)
    dataset = await datasets_repo.get_dataset(session, tenant_id, spec.dataset)
    sizes = {} if dataset is None else {dataset.id: dataset.item_count}
    graphs = [Graph.model_validate(version.definition) for version in found]
    issues += [i for i in evaluation_issues(spec, graphs, sizes, aliases) if i not in issues]
    if issues or record is None:
        raise invalid(issues)
    numbers = [version.version for version in found]
    return EvaluationPlan(spec, record.id, [v.id for v in found], numbers, spec.dataset)


def _asked(spec: EvaluationSpec, active: int | None) -> Iterator[tuple[str, int | None]]:
    """The field and number of each version scored (the active one when none is named)."""
    if spec.versions is not None:
        yield from ((f"versions[{slot}]", number) for slot, number in enumerate(spec.versions))
    else:
        yield "version", spec.version if spec.version is not None else active


async def _store(
    session: AsyncSession, tenant_id: str, plan: EvaluationPlan, trace: dict[str, str] | None
) -> Job:
    examples = await dataset_items(session, plan.dataset_id)
    steps = items_of(examples, len(plan.version_ids))
    version_id = plan.version_ids[0]
    return await queue_kind_job(
        session, tenant_id, version_id, EVALUATION, plan.to_json(), steps, trace
    )


async def find(session: AsyncSession, tenant_id: str, evaluation_id: str) -> Job:
    """The tenant's evaluation; another tenant's, or a job of another kind, is not found."""
    return await find_kind_job(session, tenant_id, evaluation_id, EVALUATION, "evaluation")


async def status(session: AsyncSession, tenant_id: str, evaluation_id: str) -> EvaluationView:
    """The evaluation's state, counts and usage by role; its result once it completed, or a
    partial one over the examples scored before it was cancelled."""
    job = await find(session, tenant_id, evaluation_id)
    plan = EvaluationPlan.from_json(job.spec or {})
    result = None
    if job.status in (JobStatus.COMPLETED, JobStatus.CANCELLED):
        scored = await _scored(session, job.id)
        partial = job.status == JobStatus.CANCELLED
        result = result_of(plan.versions, scored, seed=plan.spec.seed, partial=partial)
    roles = await _roles(session, [job.id])
    return _view(job, plan, roles.get(job.id, {}), result)


async def _scored(session: AsyncSession, job_id: str) -> list[ScoredItem]:
    """The items that ended scored (succeeded or failed), in index order."""
    scored: list[ScoredItem] = []
    after = -1
    while True:
        page = await repo.results_page(session, job_id, after, PAGE)
        ended = [item for item in page if item.status in SCORED]
        scored += [(item.item_index, _score(item.output), item.error) for item in ended]
        if len(page) < PAGE:
            return scored
        after = page[-1].item_index


SCORED = (ItemStatus.SUCCEEDED, ItemStatus.FAILED)


def _score(output: Any) -> float:
    return float(output["score"]) if isinstance(output, dict) else 0.0


async def _roles(
    session: AsyncSession, job_ids: Collection[str]
) -> dict[str, dict[str, dict[str, float]]]:
    """Per evaluation: calls, tokens and cost by role over its items."""
    sums = await repo.output_sums(session, job_ids, USAGE_PATHS)
    return {
        job_id: _by_role(dict(zip(USAGE_PATHS, found, strict=True)))
        for job_id, found in sums.items()
    }


def _by_role(sums: dict[tuple[str, ...], float]) -> dict[str, dict[str, float]]:
    roles: dict[str, dict[str, float]] = {}
    for role in ROLES:
        spent = {name: sums[("usage", role.value, name)] for name in SPENT}
        if spent["calls"]:
            roles[role.value] = {k: v if k == "cost" else int(v) for k, v in spent.items()}
    return roles


def _view(
    job: Job, plan: EvaluationPlan, roles: dict[str, dict[str, float]],
    result: EvaluationResult | None,
) -> EvaluationView:  # fmt: skip
    progress = counts(job)
    usage = {**progress["usage"], "roles": roles}
    return EvaluationView(
        job.id, job.status, plan.graph_id, plan.versions, plan.dataset_id, plan.spec.seed,
        progress["counts"], usage, job.error, job.created_at, job.started_at,
        job.finished_at, result,
    )  # fmt: skip


async def listing(
    session: AsyncSession, tenant_id: str, limit: int, before: str | None
) -> tuple[list[EvaluationView], str | None]:
    """Evaluations newest first (without results: read one for its result), and the cursor
    of the next page."""
    found = await repo.list_jobs(session, tenant_id, limit, jobs.cursor(before), kind=EVALUATION)
    nxt = f"{found[-1].created_at.isoformat()}~{found[-1].id}" if len(found) == limit else None
    roles = await _roles(session, [job.id for job in found])
    views = [
        _view(job, EvaluationPlan.from_json(job.spec or {}), roles.get(job.id, {}), None)
        for job in found
    ]
    return views, nxt


async def cancel(
    runtime: Runtime, session: AsyncSession, tenant_id: str, evaluation_id: str
) -> None:
    """Cancel it as a job is cancelled: items in flight stop, finished ones stay."""
    await find(session, tenant_id, evaluation_id)
    await jobs.cancel(runtime, session, tenant_id, evaluation_id)
