"""Batches (``/v1/batches``): a create checked line by line and stored as a run of the
``openai_batch`` kind, its reads, listing and cancel (its output files are made as its run
ends: :meth:`~app.services.batches.kind.OpenAIBatchKind.finish`).

A create is deduplicated: the same ``Idempotency-Key``, or an identical request within
``batch_dedupe_window_s``, answers the batch made first, so the SDK's own retries (it sends no
key) never start a second batch. The database decides between creates at once: the key, and
the request hash of a keyless batch within its window (``dedupe_hash``), are unique per tenant,
and the create that loses answers the batch that won.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.base import utcnow
from app.db.models import BatchRecord, Job
from app.db.repositories import batches as repo
from app.db.repositories import events as events_repo
from app.db.repositories import jobs as jobs_repo
from app.lifecycle import EventKind, JobStatus
from app.services.batches import files, ids, storage
from app.services.batches.kind import OPENAI_BATCH
from app.services.batches.lines import check_line
from app.services.commits import after_commit
from app.services.errors import Conflict, InvalidInput, Issue, NotFound
from app.services.requests import jobs
from app.services.runner.webhooks import check_webhook_url

if TYPE_CHECKING:
    from app.services.runtime import Runtime

SUPPORTED = ("/v1/chat/completions",)
KNOWN = (
    *SUPPORTED, "/v1/responses", "/v1/embeddings", "/v1/completions", "/v1/moderations",
    "/v1/images/generations", "/v1/images/edits", "/v1/videos",
)  # fmt: skip
WINDOWS = {"24h": 24 * 3600.0}  # the completion windows OpenAI documents
PAGE = 1_000
MAX_ISSUES = 20


class BatchCreate(BaseModel):
    """The body of ``POST /v1/batches``."""

    model_config = ConfigDict(extra="ignore")

    input_file_id: str = Field(min_length=1, max_length=64)
    endpoint: str = Field(min_length=1, max_length=64)
    completion_window: str = Field(min_length=1, max_length=16)
    metadata: dict[str, str] | None = Field(default=None, max_length=16)
    # Not OpenAI's (its webhooks are set per project): sent with the SDK's ``extra_body``.
    webhook_url: str | None = Field(default=None, max_length=2048)


async def create(
    runtime: Runtime, session: AsyncSession, tenant_id: str, spec: BatchCreate, key: str | None
) -> tuple[BatchRecord, Job]:
    """The batch of this request: a new one, or the one an earlier identical create made."""
    digest = _digest(spec)
    earlier = await _earlier(runtime, session, tenant_id, digest, key)
    if earlier is not None:
        return await find(session, tenant_id, earlier.id)
    window = _window(spec, runtime.settings.batch_deadline_cap_s)
    _check(spec)
    await check_webhook_url(spec.webhook_url, runtime.settings)
    source = await files.find_input(session, tenant_id, spec.input_file_id)
    batch_id, now = ids.batch_id(), utcnow()
    deadline = now + timedelta(seconds=window)
    job = Job(
        id=batch_id, tenant_id=tenant_id, graph_version_id=None, kind=OPENAI_BATCH,
        spec={"deadline": deadline.isoformat(), "endpoint": spec.endpoint},
        status=JobStatus.QUEUED, webhook_url=spec.webhook_url,
    )  # fmt: skip
    record = BatchRecord(
        id=batch_id, tenant_id=tenant_id, input_file_id=source.id, endpoint=spec.endpoint,
        completion_window=spec.completion_window, batch_metadata=spec.metadata,
        idempotency_key=key, request_hash=digest, dedupe_hash=_held(runtime, digest, key),
        created_at=now, expires_at=deadline,
    )  # fmt: skip
    if not await repo.add_batch(session, job, record):
        return await _winner(runtime, session, tenant_id, digest, key)
    path = storage.file_path(runtime.settings.files_dir, tenant_id, source.id)
    count = await _store_lines(session, batch_id, path, spec.endpoint)
    await jobs_repo.set_item_count(session, batch_id, count)
    await events_repo.append_events(
        session, [(batch_id, EventKind.JOB_SUBMITTED, {"items": count})]
    )
    if runtime.runner is not None:
        after_commit(session, runtime.runner.notify)
    return await find(session, tenant_id, batch_id)


def _held(runtime: Runtime, digest: str, key: str | None) -> str | None:
    """The hash a new batch holds: none with a key (the key dedupes) or without a window."""
    return None if key or not runtime.settings.batch_dedupe_window_s else digest


def _digest(spec: BatchCreate) -> str:
    text = json.dumps(spec.model_dump(mode="json"), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


async def _earlier(
    runtime: Runtime, session: AsyncSession, tenant_id: str, digest: str, key: str | None
) -> BatchRecord | None:
    """The batch this create repeats: the key's, or the one holding its hash within the
    window (a holder past the window lets the hash go, to this create)."""
    if key is not None:
        found = await repo.find_by_key(session, tenant_id, key)
        if found is not None and found.request_hash != digest:
            message = "this key was used for a different batch request"
            raise Conflict(message, [Issue("Idempotency-Key", message)])
        return found
    holder = await repo.find_by_hash(session, tenant_id, digest)
    since = utcnow() - timedelta(seconds=runtime.settings.batch_dedupe_window_s)
    if holder is None or holder.created_at >= since:
        return holder
    await repo.release_hash(session, holder.id, digest)
    return None


async def _winner(
    runtime: Runtime, session: AsyncSession, tenant_id: str, digest: str, key: str | None
) -> tuple[BatchRecord, Job]:
    """The batch an identical create made meanwhile (it won the insert)."""
    won = await _earlier(runtime, session, tenant_id, digest, key)
    if won is None:  # it was deleted at once: the SDK retries a 409
        message = "an identical create ran at the same time; send it again"
        raise Conflict(message, [Issue("input_file_id", message)])
    return await find(session, tenant_id, won.id)


def _window(spec: BatchCreate, cap_s: float | None) -> float:
    """The seconds from create to deadline: the completion window (OpenAI's only one,
    ``24h``), capped by ``batch_deadline_cap_s`` when that is set."""
    seconds = WINDOWS.get(spec.completion_window)
    if seconds is None:
        message = f"completion_window must be one of {', '.join(WINDOWS)}"
        raise InvalidInput(
            "the completion window is invalid", [Issue("completion_window", message)]
        )
    return seconds if cap_s is None else min(seconds, cap_s)


def _check(spec: BatchCreate) -> None:
    for name, value in (spec.metadata or {}).items():
        if len(name) > 64 or len(value) > 512:
            message = "metadata keys are at most 64 characters, values at most 512"
            raise InvalidInput("the metadata is invalid", [Issue(f"metadata.{name}", message)])
    if spec.endpoint in SUPPORTED:
        return
    known = "an OpenAI endpoint not supported here" if spec.endpoint in KNOWN else "unknown"
    message = f"endpoint {spec.endpoint!r} is {known}; supported: {', '.join(SUPPORTED)}"
    raise InvalidInput("the endpoint is not supported", [Issue("endpoint", message)])


async def _store_lines(session: AsyncSession, batch_id: str, path: Any, endpoint: str) -> int:
    """Check every line (parsed off the event loop) and store it as an item, a page per
    statement; one 422 naming each bad line (up to 20) and nothing stored otherwise."""
    issues: list[Issue] = []
    seen: dict[str, int] = {}
    count = 0
    async for batch in storage.read_lines(path, PAGE):
        checked = await asyncio.to_thread(_checked, batch, endpoint, count + 1)
        for at, (line, problems) in enumerate(checked, start=count + 1):
            issues += problems
            if line is not None and not problems:
                _unique(line["custom_id"], at, seen, issues)
        count += len(batch)
        if len(issues) >= MAX_ISSUES:
            break
        if not issues:
            page = [jobs_repo.NewItem(line, line["custom_id"]) for line, _ in checked if line]
            await jobs_repo.add_rows(session, batch_id, count - len(page), page)
    if issues or count == 0:
        raise _bad_lines(issues[:MAX_ISSUES])
    return count


def _checked(
    batch: list[bytes], endpoint: str, first: int
) -> list[tuple[dict[str, Any] | None, list[Issue]]]:
    """Each line's ``{custom_id, body}`` and its issues, lines numbered from ``first``."""
    checked: list[tuple[dict[str, Any] | None, list[Issue]]] = []
    for at, raw in enumerate(batch, start=first):
        if not raw.strip():
            checked.append((None, [Issue("(line)", "empty line", line=at)]))
            continue
        line, problems = check_line(raw, endpoint)
        checked.append((line, [Issue(field, message, line=at) for field, message in problems]))
    return checked


def _unique(custom_id: str, at: int, seen: dict[str, int], issues: list[Issue]) -> None:
    first = seen.setdefault(custom_id, at)
    if first != at:
        message = f"custom_id {custom_id!r} is also on line {first}; it must be unique"
        issues.append(Issue("custom_id", message, line=at))


def _bad_lines(issues: list[Issue]) -> InvalidInput:
    if not issues:
        issues = [Issue("input_file_id", "the input file has no lines")]
    return InvalidInput("the input file has invalid lines", [
        Issue(f"input_file_id.{i.field}" if i.line is None else i.field, i.message, line=i.line)
        for i in issues
    ])  # fmt: skip


async def find(session: AsyncSession, tenant_id: str, batch_id: str) -> tuple[BatchRecord, Job]:
    """The tenant's batch and its job; another tenant's is not found."""
    found = await repo.get_batch(session, tenant_id, batch_id)
    if found is None:
        raise NotFound(f"batch {batch_id!r} not found", [Issue("batch_id", "no such batch")])
    return found


async def retrieve(session: AsyncSession, tenant_id: str, batch_id: str) -> tuple[BatchRecord, Job]:
    """The batch (with its output and error files once its run has ended)."""
    return await find(session, tenant_id, batch_id)


async def listing(
    session: AsyncSession, tenant_id: str, limit: int, after: str | None
) -> tuple[list[tuple[BatchRecord, Job]], bool]:
    """A page of the tenant's batches, newest first, and whether more follow."""
    found = await repo.list_batches(session, tenant_id, limit + 1, after)
    return found[:limit], len(found) > limit


async def cancel(
    runtime: Runtime, session: AsyncSession, tenant_id: str, batch_id: str
) -> tuple[BatchRecord, Job]:
    """Cancel it as a job is cancelled: lines in flight stop, finished ones stay and are in
    its output files; ``cancelling`` until its runner has stopped."""
    await find(session, tenant_id, batch_id)
    outcome = await jobs.cancel(runtime, session, tenant_id, batch_id)
    if outcome.stopped:
        await repo.mark_cancelling(session, batch_id, utcnow())
    return await retrieve(session, tenant_id, batch_id)
