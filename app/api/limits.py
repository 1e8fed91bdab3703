"""Refuse what no route can serve before routing: oversized bodies, NUL in the URL."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.problems import service_problem
from app.services.errors import Issue, Malformed, PayloadTooLarge, ServiceError


class BodyLimit:
    """ASGI middleware: a declared ``Content-Length`` over the limit is refused at once; a body
    that streams past it fails its read with :class:`PayloadTooLarge` (mapped to 413).
    ``paths`` gives some exact paths a limit of their own (file uploads)."""

    def __init__(self, app: ASGIApp, max_bytes: int, paths: dict[str, int] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.paths = paths or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.paths.get(scope["path"], self.max_bytes)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _refuse(send, limit)
            return
        await self.app(scope, _counting(receive, limit), send)


def _counting(receive: Receive, limit: int) -> Receive:
    seen = 0

    async def counted() -> Message:
        nonlocal seen
        message = await receive()
        seen += len(message.get("body", b""))
        if seen > limit:
            detail = f"the body is larger than {limit} bytes"
            raise PayloadTooLarge(detail, [Issue("(body)", detail)])
        return message

    return counted


class NoNulInURL:
    """ASGI middleware: a NUL character in the path or the query string (``%00``) is a 400
    naming where it is; no id, name or cursor may contain one (Postgres text cannot)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            where = _nul_in(scope)
            if where is not None:
                detail = f"the {where} contains a NUL character (%00)"
                await _problem(send, Malformed(detail, [Issue(where, "contains NUL")]))
                return
        await self.app(scope, receive, send)


def _nul_in(scope: Scope) -> str | None:
    if "\x00" in scope["path"]:
        return "path"
    query = bytes(scope.get("query_string", b""))
    if b"\x00" in query or b"%00" in query:
        return "query"
    return None


async def _refuse(send: Send, limit: int) -> None:
    detail = f"the body is larger than {limit} bytes"
    await _problem(send, PayloadTooLarge(detail, [Issue("(body)", detail)]))


async def _problem(send: Send, error: ServiceError) -> None:
    """The problem details of ``error``, written before the app (and its exception handlers)
    is reached."""
    document = service_problem(error)
    assert document is not None, "a service error with a problem type"
    body = json.dumps(document).encode()
    headers = [
        (b"content-type", b"application/problem+json"),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "http.response.start", "status": document["status"], "headers": headers})
    await send({"type": "http.response.body", "body": body})
