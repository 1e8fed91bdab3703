"""Batch jobs: submission (a JSON list or a streamed JSONL file), status, results, cancel."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.models import Job
from app.db.repositories import events as events_repo
from app.db.repositories import identities, results
from app.db.repositories import jobs as repo
from app.db.repositories import webhooks as webhooks_repo
from app.db.repositories.jobs import Cancellation, NewItem
from app.engine import InputError
from app.engine.execution.inputs import check_inputs
from app.engine.graph import graph_inputs
from app.engine.graph.model import InputSpec
from app.lifecycle import EventKind, JobStatus
from app.services.commits import after_commit
from app.services.errors import InvalidInput, Issue, NotFound
from app.services.job_views import AttemptView, ItemView, JobView, attempt_view, item_view, job_view
from app.services.ledger.options import NO_OPTIONS, LedgerOptions
from app.services.requests import graphs, rows
from app.services.requests.jsonl import Readable, jsonl_values
from app.services.requests.kind_jobs import elsewhere
from app.services.requests.views import NodeView, stored_node_view
from app.services.runner.ending import RunEnd, end_run
from app.services.runner.kinds import BATCH
from app.services.runner.webhooks import check_webhook_url

if TYPE_CHECKING:  # the runtime's runner imports this module
    from app.services.runtime import Runtime

INSERT_BATCH = 1_000


@dataclass(frozen=True, slots=True)
class JobSpec:
    """What a submission asks for, besides its inputs."""

    graph: str
    version: int | None = None
    priority: int = 0
    webhook_url: str | None = None
    ledger: LedgerOptions = NO_OPTIONS
    trace: dict[str, str] | None = None  # the caller's W3C trace context (its traceparent)


async def accept(
    runtime: Runtime, session: AsyncSession, tenant_id: str, spec: JobSpec, inputs: Iterable[Any]
) -> Job:
    """Submit a job from a JSON list of inputs; its runner is woken once the job is committed."""
    await check_webhook_url(spec.webhook_url, runtime.settings)
    job = await submit(session, tenant_id, spec, inputs)
    after_commit(session, lambda: announce(runtime))
    return job


async def accept_jsonl(runtime: Runtime, tenant_id: str, spec: JobSpec, source: Readable) -> str:
    """Submit a job from a JSONL upload, under the configured line limits; its id.

    Items are stored :data:`INSERT_BATCH` lines at a time, each batch in a transaction of its
    own (a long upload never holds the database's one writer on SQLite), under a job that stays
    ``uploading`` (seen and claimed by no one) until every line is in; a failed upload deletes
    it, so no half job is ever seen."""
    settings = runtime.settings
    await check_webhook_url(spec.webhook_url, settings)
    limits = (settings.max_jsonl_line_bytes, settings.max_jsonl_lines, settings.max_document_depth)
    async with runtime.sessions() as session:
        job, specs = await _create(session, tenant_id, spec, JobStatus.UPLOADING)
        await session.commit()
    stored = False
    try:
        count = await _store_lines(runtime.sessions, job.id, specs, jsonl_values(source, *limits))
        await _publish(runtime.sessions, job.id, count)
        stored = True
    finally:
        if not stored:
            await _discard(runtime.sessions, job.id)
    announce(runtime)
    return job.id


async def _store_lines(
    sessions: async_sessionmaker[AsyncSession],
    job_id: str,
    specs: dict[str, InputSpec],
    values: AsyncIterator[tuple[int, Any]],
) -> int:
    batch: list[NewItem] = []
    lines: list[int] = []
    count = 0
    async for number, value in values:
        where = Issue("inputs", "", line=number)
        batch.append(_checked(specs, value, where, f"inputs[{count + len(batch)}]"))
        lines.append(number)
        if len(batch) == INSERT_BATCH:
            count = await _store_batch(sessions, job_id, count, batch, lines)
    return await _store_batch(sessions, job_id, count, batch, lines)


async def _store_batch(
    sessions: async_sessionmaker[AsyncSession],
    job_id: str,
    count: int,
    batch: list[NewItem],
    lines: list[int],
) -> int:
    if batch:
        _refuse_repeat(batch, count, lines, {})
        try:
            async with sessions() as session:
                await repo.add_rows(session, job_id, count, batch)
                await session.commit()
        except IntegrityError:
            await _name_stored_repeat(sessions, job_id, count, batch, lines)
            raise
        count += len(batch)
        batch.clear()
        lines.clear()
    return count


def _refuse_repeat(
    batch: list[NewItem], count: int, lines: list[int], earlier: dict[str, int]
) -> None:
    """Refuse the first row of ``batch`` (items ``count, count + 1, ...``) whose custom_id a
    row before it in the batch has, or one of ``earlier`` (custom_id -> index)."""
    repeat = rows.first_repeat(batch, count, earlier)
    if repeat is not None:
        rows.duplicate(*repeat, line=lines[repeat[0] - count])


async def _name_stored_repeat(
    sessions: async_sessionmaker[AsyncSession],
    job_id: str,
    count: int,
    batch: list[NewItem],
    lines: list[int],
) -> None:
    """The batch broke the job's unique custom_id index: refuse the row that repeats one of
    an earlier batch. Only this path asks the database, so memory holds one batch's ids and
    an upload without repeats pays no lookup."""
    custom_ids = {item.custom_id for item in batch if item.custom_id is not None}
    async with sessions() as session:
        earlier = await identities.taken(session, job_id, custom_ids)
    _refuse_repeat(batch, count, lines, earlier)


async def _publish(sessions: async_sessionmaker[AsyncSession], job_id: str, count: int) -> None:
    if count == 0:
        raise InvalidInput("a job needs at least one input", [Issue("inputs", "no inputs")])
    async with sessions() as session:
        await repo.publish_job(session, job_id, count)
        await events_repo.append_events(
            session, [(job_id, EventKind.JOB_SUBMITTED, {"items": count})]
        )
        await session.commit()


async def _discard(sessions: async_sessionmaker[AsyncSession], job_id: str) -> None:
    # Shielded: a cancelled request (the client went away) must still leave no half job.
    async def discard() -> None:
        async with sessions() as session:
            await repo.delete_job(session, job_id)
            await session.commit()

    await asyncio.shield(discard())


def announce(runtime: Runtime) -> None:
    """Count a submitted job and wake the runner (once the job is committed)."""
    runtime.metrics.jobs_submitted.inc()
    if runtime.runner is not None:
        runtime.runner.notify()


async def submit(
    session: AsyncSession,
    tenant_id: str,
    spec: JobSpec,
    inputs: Iterable[Any],
) -> Job:
    """Store a job and its items; an invalid item raises ``InvalidInput`` naming its position.

    The items are checked in a worker thread: a long list does not hold the event loop."""
    job, specs = await _create(session, tenant_id, spec)
    checked = await asyncio.to_thread(_check_all, specs, inputs)
    count = 0
    for start in range(0, len(checked), INSERT_BATCH):
        count = await _flush(session, job, count, checked[start : start + INSERT_BATCH])
    return await finalize(session, job)


def _check_all(specs: dict[str, InputSpec], inputs: Iterable[Any]) -> list[NewItem]:
    checked = [
        _checked(specs, value, Issue(f"inputs[{position}]", ""), f"inputs[{position}]")
        for position, value in enumerate(inputs)
    ]
    repeat = rows.first_repeat(checked, 0, {})
    if repeat is not None:
        rows.duplicate(*repeat)
    return checked


async def _create(
    session: AsyncSession,
    tenant_id: str,
    spec: JobSpec,
    status: JobStatus = JobStatus.QUEUED,
) -> tuple[Job, dict[str, InputSpec]]:
    stored = await graphs.get(session, tenant_id, spec.graph, spec.version)
    job = await repo.create_job(
        session,
        tenant_id,
        stored.version.id,
        spec.priority,
        spec.webhook_url,
        status,
        cache=spec.ledger.cache,
        replay=spec.ledger.replay,
        spec={"trace": spec.trace} if spec.trace else None,
    )
    return job, graph_inputs(stored.version.definition)


def _checked(specs: dict[str, InputSpec], value: Any, where: Issue, row: str) -> NewItem:
    """The row's checked inputs and identity; ``where`` names it in input errors and ``row``
    (``inputs[3]``) in identity errors."""
    if not isinstance(value, dict):
        problem = f"an input must be a JSON object with {', '.join(specs)}"
        raise InvalidInput(_where(where, problem), [Issue(where.field, problem, line=where.line)])
    item = rows.identified(specs, value, row, where.line)
    try:
        return NewItem(check_inputs(specs, item.input), item.custom_id, item.metadata)
    except InputError as exc:
        raise InvalidInput(
            _where(where, str(exc)), [Issue(where.field, str(exc), line=where.line)]
        ) from None


def _where(issue: Issue, message: str) -> str:
    return (
        f"line {issue.line}: {message}" if issue.line is not None else f"{issue.field}: {message}"
    )


async def _flush(session: AsyncSession, job: Job, count: int, batch: list[NewItem]) -> int:
    if batch:
        await repo.add_rows(session, job.id, count, batch)
        count += len(batch)
        batch.clear()
    job.item_count = count
    return count


async def finalize(session: AsyncSession, job: Job) -> Job:
    """Record the job's ``item_count`` items and its ``job_submitted`` event."""
    if job.item_count == 0:
        raise InvalidInput("a job needs at least one input", [Issue("inputs", "no inputs")])
    await repo.set_item_count(session, job.id, job.item_count)
    await events_repo.append_events(
        session, [(job.id, EventKind.JOB_SUBMITTED, {"items": job.item_count})]
    )
    return job


async def find(session: AsyncSession, tenant_id: str, job_id: str) -> Job:
    job = await repo.get_job(session, tenant_id, job_id)
    if job is None:
        raise NotFound(f"job {job_id!r} not found")
    return job


async def status(session: AsyncSession, tenant_id: str, job_id: str) -> JobView:
    """The batch job with counts, throughput, ETA, tokens and cost; a run of another kind is
    not found here (the error names where it is)."""
    return (await batch_job(session, tenant_id, job_id))[1]


async def batch_job(session: AsyncSession, tenant_id: str, job_id: str) -> tuple[Job, JobView]:
    """The batch job's row and its view (``status``), in one query."""
    found = await repo.get_job_with_graph(session, tenant_id, job_id)
    if found is None:
        raise NotFound(f"job {job_id!r} not found")
    if found[0].kind != BATCH:
        raise elsewhere(found[0])
    return found[0], job_view(*found)


async def listing(
    session: AsyncSession, tenant_id: str, limit: int, before: str | None, status_filter: str | None
) -> tuple[list[JobView], str | None]:
    """Batch job views newest first, and the cursor of the next page."""
    found = await repo.list_jobs(session, tenant_id, limit, cursor(before), status_filter, BATCH)
    nxt = f"{found[-1].created_at.isoformat()}~{found[-1].id}" if len(found) == limit else None
    # Batch jobs always run a graph version (only a Batch API batch has none).
    graphs = await repo.graph_versions_of(session, {str(job.graph_version_id) for job in found})
    return [job_view(job, *graphs[str(job.graph_version_id)]) for job in found], nxt


def cursor(before: str | None) -> tuple[datetime, str] | None:
    """The (created_at, id) of a listing's ``next`` cursor; ``InvalidInput`` if malformed."""
    if before is None:
        return None
    moment, _, job_id = before.partition("~")
    try:
        return datetime.fromisoformat(moment), job_id
    except ValueError:
        raise InvalidInput(
            "'before' is not a cursor from this API", [Issue("before", "malformed")]
        ) from None


async def cancel(
    runtime: Runtime, session: AsyncSession, tenant_id: str, job_id: str
) -> Cancellation:
    """Cancel the job; it ends through ``end_run`` (its metrics count once this commits).

    Its terminal event is written here when no runner holds the job; otherwise the runner
    holding it is told once this commits, and writes the event when its in-flight items have
    stopped. On SQLite, one process serves the database: with its runner down, nobody else
    would close the job, so it is closed here."""
    runner = runtime.runner
    runner_gone = runtime.settings.is_sqlite and not (runner and runner.alive)
    outcome = await repo.cancel_job(session, tenant_id, job_id, runner_gone=runner_gone)
    if outcome is None:
        raise NotFound(f"job {job_id!r} not found")
    if outcome.stopped:
        end = RunEnd(JobStatus.CANCELLED, closed=outcome.items, announce=not outcome.runner_holds)
        await end_run(session, runtime.metrics, outcome.job, end)
    if runner is not None and outcome.runner_holds:
        after_commit(session, lambda: runner.cancel_local(job_id))
    return outcome


@dataclass(frozen=True, slots=True)
class ResultsPage:
    """Items in input order; ``next`` is the index to continue after (``None``: the last page)."""

    items: list[ItemView]
    next: int | None


@dataclass(frozen=True, slots=True)
class ItemDetail:
    """One item with its input, its identity and every stored node record."""

    index: int
    status: str
    output: Any
    error: str | None
    custom_id: str | None
    metadata: dict[str, str] | None
    input: Any
    nodes: list[NodeView]


@dataclass(frozen=True, slots=True)
class WebhookDeliveries:
    """A job's webhook URL, its delivery state and every attempt."""

    url: str | None
    state: str | None
    attempts: list[AttemptView]


async def results_page(
    session: AsyncSession, tenant_id: str, job_id: str, after: int, limit: int
) -> ResultsPage:
    """Items in input order after index ``after``; ``next`` continues the listing."""
    await find(session, tenant_id, job_id)
    return await items_page(session, job_id, after, limit)


async def items_page(session: AsyncSession, job_id: str, after: int, limit: int) -> ResultsPage:
    """``results_page`` of a job the caller has found already."""
    items = await repo.results_page(session, job_id, after, limit)
    nxt = items[-1].item_index if len(items) == limit else None
    return ResultsPage([item_view(item) for item in items], nxt)


async def result_by_custom_id(
    session: AsyncSession, tenant_id: str, job_id: str, custom_id: str
) -> ResultsPage:
    """The one item submitted with ``custom_id`` as a page (empty when no item has it)."""
    await find(session, tenant_id, job_id)
    item = await identities.item_by_custom_id(session, job_id, custom_id)
    return ResultsPage([item_view(item)] if item is not None else [], None)


async def results_jsonl(
    sessions: async_sessionmaker[AsyncSession], job_id: str, page: int
) -> AsyncIterator[bytes]:
    """Every item as a JSONL line, in input order, read page by page."""
    after = -1
    while True:
        async with sessions() as session:
            items = await repo.results_page(session, job_id, after, page)
        for item in items:
            yield jsonl_line(item_view(item))
        if len(items) < page:
            return
        after = items[-1].item_index


def jsonl_line(view: ItemView) -> bytes:
    """One result as a line of the JSONL results."""
    return (json.dumps(asdict(view), ensure_ascii=False, default=str) + "\n").encode()


async def item_detail(session: AsyncSession, tenant_id: str, job_id: str, index: int) -> ItemDetail:
    """One item with its input and every stored node record."""
    return await detail_of(session, await find(session, tenant_id, job_id), index)


async def detail_of(session: AsyncSession, job: Job, index: int) -> ItemDetail:
    """Item ``index`` of a job already found (``NotFound`` if it has no such item)."""
    job_id = job.id
    item = await repo.get_item(session, job_id, index)
    if item is None:
        raise NotFound(f"job {job_id!r} has no item {index}")
    nodes = await results.item_nodes(session, job_id, index)
    views = [stored_node_view(row) for row in nodes]
    outcome = item_view(item)
    return ItemDetail(**asdict(outcome), input=item.input, nodes=views)


async def webhook_deliveries(
    session: AsyncSession, tenant_id: str, job_id: str
) -> WebhookDeliveries:
    """The job's webhook URL, delivery state and every attempt."""
    job = await find(session, tenant_id, job_id)
    attempts = await webhooks_repo.attempts_of(session, job_id)
    return WebhookDeliveries(
        job.webhook_url, job.webhook_state, [attempt_view(a) for a in attempts]
    )
