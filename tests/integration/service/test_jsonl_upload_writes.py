"""A JSONL upload stores its items in short transactions (the result writer is never held up
for the whole upload), and its job is seen by no one, tenant or runner, until it is complete."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text

from app.db.models import Job, JobItem
from app.settings import Settings
from tests.support.service import Service

LINES = 60_000
# What a small write may wait for the database: a few short item transactions, not the upload.
WRITE_WAIT_BOUND_S = 1.0
ECHO_GRAPH: dict[str, Any] = {
    "name": "echo",
    "inputs": {"text": {"type": "string"}},
    "nodes": [{"id": "answer", "op": "template", "text": "{text}"}],
    "outputs": {"answer": "answer"},
}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"max_jsonl_lines": 2 * LINES, "max_request_bytes": 50_000_000}
    )


def upload(lines: list[bytes]) -> dict[str, Any]:
    body = b"".join(line + b"\n" for line in lines)
    return {"data": {"graph_id": "echo"}, "files": {"inputs": ("in.jsonl", body)}}


def lines_of(count: int) -> list[bytes]:
    return [b'{"text": "line %d of a long upload"}' % i for i in range(count)]


async def small_writes(service: Service, done: asyncio.Event) -> list[float]:
    """How long each small write transaction took (the result writer's kind) until ``done``."""
    waits = []
    while not done.is_set():
        started = time.perf_counter()
        async with service.runtime.sessions() as session:
            await session.execute(text("UPDATE tenants SET name = name WHERE name = 'a'"))
            await session.commit()
        waits.append(time.perf_counter() - started)
        await asyncio.sleep(0.02)
    return waits


async def listings(client: httpx.AsyncClient, done: asyncio.Event) -> set[int]:
    """The item totals of every job the tenant saw, polling until ``done``."""
    seen = set()
    while not done.is_set():
        listed = (await client.get("/v1/jobs")).json()["items"]
        seen |= {job["counts"]["total"] for job in listed}
        await asyncio.sleep(0.02)
    return seen


async def during_upload(
    service: Service, lines: list[bytes]
) -> tuple[httpx.Response, list[float], set[int]]:
    done = asyncio.Event()
    writes = asyncio.create_task(small_writes(service, done))
    polls = asyncio.create_task(listings(service.client, done))
    await asyncio.sleep(0.05)
    try:
        response = await service.client.post("/v1/jobs", timeout=300, **upload(lines))
    finally:
        done.set()
    return response, await writes, await polls


async def stored_items(service: Service) -> tuple[int, int]:
    async with service.runtime.sessions() as session:
        jobs = await session.scalar(select(func.count()).select_from(Job))
        items = await session.scalar(select(func.count()).select_from(JobItem))
    return jobs or 0, items or 0


async def test_a_long_upload_holds_up_no_writer_and_its_job_appears_whole(
    service: Service,
) -> None:
    await service.client.post("/v1/graphs", json=ECHO_GRAPH)
    response, waits, seen = await during_upload(service, lines_of(LINES))
    assert response.status_code == 202, response.text
    assert response.json()["counts"]["total"] == LINES
    assert max(waits) < WRITE_WAIT_BOUND_S, f"a write waited {max(waits):.2f} s"
    assert seen <= {LINES}  # never listed with part of its items
    assert len((await service.client.get("/v1/jobs")).json()["items"]) == 1


async def test_a_failed_upload_leaves_no_job_and_no_items(service: Service) -> None:
    await service.client.post("/v1/graphs", json=ECHO_GRAPH)
    lines = [*lines_of(LINES), b'{"text": 7}']  # the last line is invalid
    response, _, seen = await during_upload(service, lines)
    assert response.status_code == 422
    assert response.json()["errors"][0]["line"] == LINES + 1
    assert seen == set()
    assert await stored_items(service) == (0, 0)
