"""What every run kind's routes share: the event stream answer (batch jobs' too), and the
list, status, events and cancel routes of a kind beside its own submit route, under its
router (``/v1/{noun}s``) with the id named ``{noun}_id``:

>>> # RunKindRoutes("evaluation", evaluations, EvaluationOut, EvaluationPage, ...).add_to(router)
"""

# No ``from __future__ import annotations``: a route's id annotation names its kind's own
# path parameter, so it is evaluated where the route function is made.

import json
import re
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from inspect import cleandoc
from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Path
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession
from sse_starlette import EventSourceResponse, ServerSentEvent

from app.api import deps
from app.api.schemas.common import INT64_MAX
from app.services.errors import Issue, Malformed
from app.services.observability import events
from app.services.runtime import Runtime

EVENT_ID = re.compile("[0-9]{1,19}")
EVENT_STREAM: dict[int | str, dict[str, Any]] = {  # an events route's OpenAPI answer
    200: {"content": {"text/event-stream": {}}, "description": "the event stream"}
}


class RunKindService(Protocol):
    """What a run kind's request-side service module offers its routes."""

    async def find(self, session: AsyncSession, tenant_id: str, run_id: str, /) -> object: ...
    async def status(self, session: AsyncSession, tenant_id: str, run_id: str, /) -> object: ...
    async def listing(
        self, session: AsyncSession, tenant_id: str, limit: int, before: str | None, /
    ) -> tuple[Sequence[object], str | None]: ...
    async def cancel(
        self, runtime: Runtime, session: AsyncSession, tenant_id: str, run_id: str, /
    ) -> None: ...


@dataclass(frozen=True, slots=True)
class RunKindRoutes:
    """A run kind's shared routes: ``noun`` names them (``list_{noun}s``, ``{noun}_status``,
    ``{noun}_events``, ``cancel_{noun}``) and the id; ``out`` is one run, validated from the
    service's view, ``page`` a page of them; the ``*_doc`` are the routes' descriptions."""

    noun: str
    service: RunKindService
    out: type[BaseModel]
    page: type[BaseModel]
    list_doc: str
    status_doc: str
    events_doc: str
    cancel_doc: str

    def add_to(self, router: APIRouter) -> None:
        """Add ``GET ""``, ``GET /{id}``, ``GET /{id}/events`` and ``POST /{id}/cancel``."""
        service, out, page, run = self.service, self.out, self.page, Path(alias=f"{self.noun}_id")

        async def listing(
            session: deps.ReadSessionDep, tenant: deps.TenantDep, limit: deps.PageLimit = 50,
            before: deps.PageBefore = None,
        ) -> BaseModel:  # fmt: skip
            views, nxt = await service.listing(session, tenant, limit, before)
            return page(items=[out.model_validate(view) for view in views], next=nxt)

        async def status(
            run_id: Annotated[str, run], session: deps.ReadSessionDep, tenant: deps.TenantDep
        ) -> BaseModel:
            return out.model_validate(await service.status(session, tenant, run_id))

        async def stream(
            run_id: Annotated[str, run], runtime: deps.RuntimeDep,
            session: deps.ShortReadSessionDep, tenant: deps.TenantDep,
            after: deps.EventsAfter = None, last_event_id: deps.LastEventId = None,
        ) -> EventSourceResponse:  # fmt: skip
            await service.find(session, tenant, run_id)
            return event_stream(runtime, run_id, last_event_id, after)

        async def cancel(
            run_id: Annotated[str, run], runtime: deps.RuntimeDep, session: deps.SessionDep,
            tenant: deps.TenantDep,
        ) -> BaseModel:  # fmt: skip
            await service.cancel(runtime, session, tenant, run_id)
            return out.model_validate(await service.status(session, tenant, run_id))

        one, noun = f"/{{{self.noun}_id}}", self.noun
        _add(router, "", listing, f"list_{noun}s", self.list_doc, response_model=page)
        _add(router, one, status, f"{noun}_status", self.status_doc, response_model=out)
        _add(router, f"{one}/events", stream, f"{noun}_events", self.events_doc,
             response_class=EventSourceResponse, responses=EVENT_STREAM)  # fmt: skip
        _add(router, f"{one}/cancel", cancel, f"cancel_{noun}", self.cancel_doc,
             methods=["POST"], response_model=out)  # fmt: skip


def _add(router: APIRouter, path: str, endpoint: Any, name: str, doc: str, **options: Any) -> None:
    router.add_api_route(path, endpoint, name=name, description=cleandoc(doc), **options)


def event_stream(
    runtime: Runtime, job_id: str, last_event_id: str | None, after: int | None
) -> EventSourceResponse:
    """The job's events after the one the client names, until its terminal event."""
    stream = runtime.events.follow(job_id, resume_after(last_event_id, after))
    return EventSourceResponse(as_sse(stream, runtime), ping=runtime.settings.sse_ping_s)


def resume_after(last_event_id: str | None, after: int | None) -> int:
    """The id to resume after: ``Last-Event-ID`` when sent, else ``after``, else 0."""
    if last_event_id is None:
        return after or 0
    text = last_event_id.strip()
    if not EVENT_ID.fullmatch(text) or int(text) > INT64_MAX:
        raise Malformed(
            "Last-Event-ID must be an event id from this stream",
            [Issue("Last-Event-ID", "not an event id (ASCII digits, at most 2^63 - 1)")],
        )
    return int(text)


async def as_sse(
    stream: AsyncGenerator[list[events.JobEvent]], runtime: Runtime
) -> AsyncIterator[bytes]:
    runtime.metrics.event_streams.inc()
    try:
        async with aclosing(stream):  # leaves the job's poller as soon as the client goes
            async for batch in stream:
                yield b"".join(_sse(event) for event in batch)  # one write per batch
    finally:
        runtime.metrics.event_streams.dec()


def _sse(event: events.JobEvent) -> bytes:
    return ServerSentEvent(data=json.dumps(event.data), event=event.kind, id=str(event.id)).encode()
