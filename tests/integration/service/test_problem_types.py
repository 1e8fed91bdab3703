"""Every problem type the API can answer with, triggered over HTTP: its status, its ``type`` and
the field it names. A problem type without a case here fails ``test_every_problem_type_is_pinned``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import event
from sqlalchemy.orm import Session

from app.api.app import create_app
from app.api.problems import PROBLEM_TYPES
from app.api.server import limited_protocol
from app.settings import Settings
from tests.support.service import Service, serve

GRAPH: dict[str, Any] = {
    "name": "echo",
    "inputs": {"text": {"type": "string"}},
    "nodes": [{"id": "answer", "op": "template", "text": "{text}"}],
    "outputs": {"answer": "answer"},
}
HEAD_LIMIT_BYTES = 4096
HEAD_TIMEOUT_S = 0.3


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]


async def of(response: Awaitable[httpx.Response]) -> Answer:
    answered = await response
    assert answered.headers["content-type"] == "application/problem+json"
    return Answer(answered.status_code, answered.json())


async def malformed_request(service: Service, _: Settings) -> Answer:
    headers = {"content-type": "application/json"}
    return await of(service.client.post("/v1/graphs", content=b"{", headers=headers))


async def unauthorized(service: Service, _: Settings) -> Answer:
    async with httpx.AsyncClient(base_url=service.url) as anonymous:
        return await of(anonymous.get("/v1/graphs"))


async def conflict(service: Service, _: Settings) -> Answer:
    await service.client.post("/v1/graphs", json=GRAPH)  # one version: nothing to roll back to
    return await of(service.client.post("/v1/graphs/echo/rollback"))


async def not_found(service: Service, _: Settings) -> Answer:
    return await of(service.client.get("/v1/jobs/no-such-job"))


async def method_not_allowed(service: Service, _: Settings) -> Answer:
    return await of(service.client.delete("/v1/graphs"))


async def payload_too_large(service: Service, settings: Settings) -> Answer:
    body = b"[" + b"1," * settings.max_request_bytes + b"1]"
    return await of(service.client.post("/v1/graphs", content=body, headers=_JSON))


async def unsupported_media_type(service: Service, _: Settings) -> Answer:
    headers = {"content-type": "text/plain"}
    return await of(service.client.post("/v1/graphs", content=json.dumps(GRAPH), headers=headers))


async def invalid_input(service: Service, _: Settings) -> Answer:
    graph = {**GRAPH, "outputs": {"answer": "no-such-node"}}
    return await of(service.client.post("/v1/graphs", json=graph))


async def too_many_requests(service: Service, settings: Settings) -> Answer:
    throttled = settings.model_copy(update={"auth_failures_per_minute": 1.0})
    async with serve(throttled) as other:
        wrong = {"Authorization": "Bearer ie_wrong"}
        await other.client.get("/v1/graphs", headers=wrong)
        return await of(other.client.get("/v1/graphs", headers=wrong))


async def internal(service: Service, _: Settings) -> Answer:
    def refuse(_session: Session) -> None:
        raise RuntimeError("the commit is refused")

    await service.client.get("/v1/graphs")  # the key is looked up (and cached) first
    event.listen(Session, "before_commit", refuse)
    try:
        return await of(service.client.post("/v1/graphs", json=GRAPH))
    finally:
        event.remove(Session, "before_commit", refuse)


async def unavailable(service: Service, settings: Settings) -> Answer:
    # The runner is enabled, and not running: the service is not ready.
    service.runtime.settings = settings.model_copy(update={"runner_enabled": True})
    return await of(service.client.get("/readyz"))


async def headers_too_large(_: Service, settings: Settings) -> Answer:
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 2 * HEAD_LIMIT_BYTES
    return await _raw(settings, head)


async def request_timeout(_: Service, settings: Settings) -> Answer:
    return await _raw(settings, b"GET /healthz HTTP/1.1\r\nHost: x")


async def _raw(settings: Settings, head: bytes) -> Answer:
    """Send ``head`` to a server with the limited protocol; the answer it gives, parsed."""
    async with _limited_server(settings) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(head)
        await writer.drain()
        received = await asyncio.wait_for(reader.read(), timeout=10)
        writer.close()
    status_line, _, rest = received.partition(b"\r\n")
    return Answer(int(status_line.split()[1]), json.loads(rest.partition(b"\r\n\r\n")[2]))


@contextlib.asynccontextmanager
async def _limited_server(settings: Settings) -> AsyncIterator[int]:
    protocol = limited_protocol(HEAD_LIMIT_BYTES, HEAD_TIMEOUT_S)
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=0, http=protocol, log_level="warning"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        await task


_JSON = {"content-type": "application/json"}
Trigger = Callable[[Service, Settings], Awaitable[Answer]]
# slug: (how to trigger it, the status, the field its first error names or None for no errors)
CASES: dict[str, tuple[Trigger, int, str | None]] = {
    "malformed-request": (malformed_request, 400, "(body)"),
    "unauthorized": (unauthorized, 401, None),
    "not-found": (not_found, 404, None),
    "method-not-allowed": (method_not_allowed, 405, None),
    "request-timeout": (request_timeout, 408, None),
    "conflict": (conflict, 409, "version"),
    "payload-too-large": (payload_too_large, 413, "(body)"),
    "unsupported-media-type": (unsupported_media_type, 415, "Content-Type"),
    "invalid-input": (invalid_input, 422, "outputs.answer"),
    "too-many-requests": (too_many_requests, 429, None),
    "headers-too-large": (headers_too_large, 431, None),
    "internal": (internal, 500, None),
    "unavailable": (unavailable, 503, None),
}


def test_every_problem_type_is_pinned() -> None:
    assert set(CASES) == set(PROBLEM_TYPES)


@pytest.mark.parametrize("slug", sorted(CASES))
async def test_problem_type(slug: str, service: Service, settings: Settings) -> None:
    trigger, status, field = CASES[slug]
    answer = await trigger(service, settings)
    assert (answer.status, answer.body["type"]) == (status, f"urn:inf-engine:problem:{slug}")
    assert answer.body["status"] == status
    assert answer.body["title"] == PROBLEM_TYPES[slug].title
    errors = answer.body.get("errors")
    assert (errors[0]["field"] if errors else None) == field, errors


def test_problem_documents_are_built_from_the_catalogue_alone() -> None:
    """No module but ``app/api/problems.py`` writes a problem ``type`` itself (there it is
    checked against the catalogue), so no slug can escape the cases above."""
    app_dir = Path(__file__).resolve().parents[3] / "app"
    writers = {
        str(path.relative_to(app_dir))
        for path in app_dir.rglob("*.py")
        if "inf-engine:problem:" in path.read_text(encoding="utf-8")
    }
    assert writers == {"api/problems.py", "api/schemas/common.py"}  # the latter: a description
