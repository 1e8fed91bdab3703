"""Request dependencies: the runtime, a database session, the calling tenant."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.services.errors import is_outage
from app.services.runtime import Runtime

log = logging.getLogger(__name__)


async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def get_session(
    runtime: Annotated[Runtime, Depends(get_runtime)],
) -> AsyncIterator[AsyncSession]:
    """A session for the request; routes commit explicitly after a successful write."""
    session = runtime.sessions()
    try:
        yield session
    finally:
        await _close(session)


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
SessionDep = Annotated[AsyncSession, Depends(get_session)]
ReadSessionDep = Annotated[AsyncSession, Depends(get_read_session)]
# Closed when the route function returns, before a streamed body starts: a stream must not hold
# a pooled connection for as long as it is open.
ShortReadSessionDep = Annotated[AsyncSession, Depends(get_read_session, scope="function")]
TenantDep = Annotated[str, Depends(get_tenant)]
