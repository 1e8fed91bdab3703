"""The official ``openai`` SDK against the service's Batch API: clients, lines, uploads."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import openai
from aiohttp import web
from sqlalchemy import select

from app.db.models import BatchRecord
from tests.support.service import Service

CHAT = "/v1/chat/completions"
Calls = list[tuple[bytes, dict[str, str]]]  # a webhook receiver's (body, headers) per call


def sdk_client(
    service: Service, max_retries: int = 0, key: str | None = None
) -> openai.AsyncOpenAI:
    """The SDK as a user builds it: ``base_url`` ending in ``/v1`` and an API key (close it)."""
    key = key or service.client.headers["Authorization"].removeprefix("Bearer ")
    return openai.AsyncOpenAI(
        base_url=f"{service.url}/v1", api_key=key, max_retries=max_retries, timeout=60
    )


def chat_line(custom_id: str, text: str, model: str = "fast", **body: Any) -> dict[str, Any]:
    """An input line of ``/v1/chat/completions`` with a system and a user message."""
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": text}]
    return {"custom_id": custom_id, "method": "POST", "url": CHAT,
            "body": {"model": model, "messages": messages, **body}}  # fmt: skip


def jsonl(lines: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(one).encode() + b"\n" for one in lines)


async def upload(client: openai.AsyncOpenAI, body: bytes, purpose: str = "batch") -> str:
    created = await client.files.create(file=("input.jsonl", body), purpose=purpose)  # type: ignore[arg-type]
    return created.id


async def file_lines(client: openai.AsyncOpenAI, file_id: str | None) -> list[dict[str, Any]]:
    """The parsed lines of an output or error file (none for no file)."""
    if file_id is None:
        return []
    content = await client.files.content(file_id)
    return [json.loads(raw) for raw in content.text.splitlines()]


async def stored_batches(service: Service) -> list[BatchRecord]:
    """Every batch row, read from the database (no API read, which could change nothing)."""
    async with service.runtime.sessions() as session:
        return list(await session.scalars(select(BatchRecord).order_by(BatchRecord.created_at)))


@contextlib.asynccontextmanager
async def webhook_receiver() -> AsyncIterator[tuple[str, Calls]]:
    """A webhook receiver on loopback: its URL and the calls it got."""
    calls: Calls = []

    async def handle(request: web.Request) -> web.Response:
        calls.append((await request.read(), dict(request.headers)))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/hook", calls
    finally:
        await runner.cleanup()
