"""Request dependencies: the runtime, a database session, the calling tenant."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Header, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.schemas.common import INT64_MAX
from app.services.errors import is_outage
from app.services.runtime import Runtime

log = logging.getLogger(__name__)


async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def get_session(
    runtime: Annotated[Runtime, Depends(get_runtime)],
) -> AsyncIterator[AsyncSession]:
    """The request's unit of work: committed when the route returns, rolled back when it raises.

    Routes never commit. The commit happens before the answer is sent (``SessionDep`` ends with
    the route function), so a commit that fails is answered as an error, never lost behind a 2xx.
    """
    session = runtime.sessions()
    try:
        yield session
        await session.commit()
    except BaseException:
        await _rollback(session)
        raise
    finally:
        await _close(session)


async def _rollback(session: AsyncSession) -> None:
    try:
        await session.rollback()
    except Exception as exc:  # the error being answered matters more than this one
        log.warning("rollback failed: %s", exc)


async def get_read_session(
    runtime: Annotated[Runtime, Depends(get_runtime)],
) -> AsyncIterator[AsyncSession]:
    """A session for requests that only read (each statement autocommits)."""
    session = runtime.reads()
    try:
        yield session
    finally:
        await _close(session)


async def _close(session: AsyncSession) -> None:
    # The session closes after the answer has gone out; a database lost by then must not
    # turn into an error that breaks the client's connection.
    try:
        await session.close()
    except Exception as exc:
        if not is_outage(exc):
            raise
        log.warning("database lost while closing a session: %s", exc)


async def get_tenant(
    request: Request,
    runtime: Annotated[Runtime, Depends(get_runtime)],
    authorization: Annotated[str | None, Header()] = None,
) -> str:
    client = request.client.host if request.client is not None else ""
    return await runtime.auth.tenant_id(authorization, client)


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
# Ends with the route function: the commit comes before the answer (see ``get_session``).
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
ReadSessionDep = Annotated[AsyncSession, Depends(get_read_session)]
# Closed when the route function returns, before a streamed body starts: a stream must not hold
# a pooled connection for as long as it is open.
ShortReadSessionDep = Annotated[AsyncSession, Depends(get_read_session, scope="function")]
TenantDep = Annotated[str, Depends(get_tenant)]


# The two ways an event stream is resumed: ``?after=`` or the SSE ``Last-Event-ID`` header.
EventsAfter = Annotated[
    int | None,
    Query(ge=0, le=INT64_MAX, description="resume after this event id (or Last-Event-ID)"),
]
LastEventId = Annotated[str | None, Header(max_length=32)]

# A listing's page, newest first: its size (the default is each route's) and where it starts.
PageLimit = Annotated[int, Query(ge=1, le=1000)]
PageBefore = Annotated[
    str | None, Query(max_length=200, description="the 'next' of the previous page")
]
