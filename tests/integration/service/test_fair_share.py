"""A 20-item job submitted behind a 100,000-item job on the same alias and priority is
``completed`` within twice its ideal time (the time it takes on the idle alias), for the same
tenant and for another, and also while the big job keeps the result writer busy without a
pause; a low-priority job still progresses under a high-priority flood, within the aging bound
(real runner, fake server over HTTP, SQLite and Postgres)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.db.repositories import jobs as jobs_repo
from app.services.runner.dispatcher import RunDispatcher
from app.settings import Settings
from tests.support.fake_llm import FakeLLM
from tests.support.graphs import ECHO_GRAPH
from tests.support.service import Service, endpoints_file

pytestmark = pytest.mark.slow

MAX_CONCURRENT = 64  # a fair half of the slots (32) holds the small job's 20 items at once
BIG = 100_000
SMALL = 20
AGING_S = 0.2
WINDOW = 1_024  # the runner's window (the default): at most this many calls of a process wait


@pytest.fixture
def window() -> int:
    return WINDOW


@pytest.fixture
def slots() -> int:
    return MAX_CONCURRENT


@pytest.fixture
def settings(
    settings: Settings, fake_llm: FakeLLM, tmp_path: Path, window: int, slots: int
) -> Settings:
    path = endpoints_file(tmp_path, fake_llm.base_url, max_concurrent=slots)
    overrides = {"endpoints_file": path, "poll_s": 0.05, "fair_aging_s": AGING_S}
    return Settings.model_validate({**settings.model_dump(), **overrides, "runner_window": window})


@contextlib.asynccontextmanager
async def runner(service: Service) -> AsyncIterator[RunDispatcher]:
    dispatcher = RunDispatcher(service.runtime)
    service.runtime.runner = dispatcher
    await dispatcher.start()
    try:
        yield dispatcher
    finally:
        await dispatcher.stop()
        service.runtime.runner = None


async def submit(client: httpx.AsyncClient, count: int, priority: int = 0) -> str:
    body = {"graph_id": "echo", "inputs": [{"text": f"t{i}"} for i in range(count)]}
    response = await client.post("/v1/jobs", json={**body, "priority": priority})
    assert response.status_code in (200, 201, 202), response.text
    return str(response.json()["id"])


async def big_job(service: Service, priority: int = 0) -> str:
    """A queued job of ``BIG`` items, stored directly (submitting 100,000 through HTTP is slow)."""
    job_id = await submit(service.client, 1, priority)
    async with service.runtime.sessions() as session:
        for start in range(1, BIG, 5_000):
            inputs = [{"text": f"b{i}"} for i in range(start, min(start + 5_000, BIG))]
            await jobs_repo.add_items(session, job_id, start, inputs)
        await jobs_repo.set_item_count(session, job_id, BIG)
        await session.commit()
    return job_id


async def completed(client: httpx.AsyncClient, job_id: str, timeout_s: float) -> dict[str, Any]:
    """The job once it is no longer queued or running, or once ``timeout_s`` passed."""
    deadline = time.monotonic() + timeout_s
    while True:
        job: dict[str, Any] = (await client.get(f"/v1/jobs/{job_id}")).json()
        if job["status"] not in ("queued", "running") or time.monotonic() > deadline:
            return job
        await asyncio.sleep(0.02)


async def timed(
    client: httpx.AsyncClient, count: int, timeout_s: float, priority: int = 0
) -> float:
    """Seconds from submitting a job of ``count`` items until it is ``completed``."""
    began = time.monotonic()
    job = await completed(client, await submit(client, count, priority), timeout_s)
    assert (job["status"], job["counts"]["succeeded"]) == ("completed", count), job
    return time.monotonic() - began


async def saturated(service: Service, slots: int = MAX_CONCURRENT) -> None:
    """Wait until the big job keeps every slot of the alias busy and fills the window."""
    gate = service.runtime.resources.endpoint("fast").gate
    window = service.runtime.settings.runner_window
    deadline = time.monotonic() + 30
    while gate.waiting < window - 2 * slots or gate.in_flight < slots:
        assert time.monotonic() < deadline, gate.snapshot()
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("same_tenant", [True, False], ids=["same-tenant", "two-tenants"])
async def test_a_small_job_behind_a_huge_one_is_not_stuck_behind_its_backlog(
    service: Service, other_tenant: httpx.AsyncClient, fake_llm: FakeLLM, same_tenant: bool
) -> None:
    fake_llm.configure(latency_ms=800, jitter_ms=400)  # jitter: calls end spread, not in waves
    await service.client.post("/v1/graphs", json=ECHO_GRAPH)
    await other_tenant.post("/v1/graphs", json=ECHO_GRAPH)
    small_client = service.client if same_tenant else other_tenant
    async with runner(service):
        ideal = await timed(small_client, SMALL, 10)  # the alias idle: the small job alone
        big = await big_job(service)
        service.runtime.runner.notify()  # type: ignore[union-attr]
        await saturated(service)

        took = await timed(small_client, SMALL, 10 * ideal)

        await service.client.post(f"/v1/jobs/{big}/cancel")
    # NOTE: measured 1.5-1.7x (once 2.3x on Postgres). Before, the small job waited behind the
    # window's whole backlog and its items were not done at 10x its ideal time.
    assert took <= 2 * ideal, (took, ideal)


@pytest.mark.parametrize("slots", [256])
async def test_a_small_job_completes_while_a_huge_one_keeps_the_writer_busy(
    service: Service, fake_llm: FakeLLM, slots: int
) -> None:
    """256 slots of 1 s calls: the big job ends about 250 items a second, some 1,000 rows a
    second, so the result writer's queue is never empty. The small job's end waits for the
    rows queued before it, not for an empty queue."""
    fake_llm.configure(latency_ms=1000, jitter_ms=500)
    await service.client.post("/v1/graphs", json=ECHO_GRAPH)
    async with runner(service):
        ideal = await timed(service.client, SMALL, 10)
        big = await big_job(service)
        service.runtime.runner.notify()  # type: ignore[union-attr]
        await saturated(service, slots)

        took = await timed(service.client, SMALL, 10 * ideal)

        await service.client.post(f"/v1/jobs/{big}/cancel")
    # NOTE: before, on Postgres, the small job's items were done at 1.0-1.3x its ideal time
    # and it was still `running` 30 s later (the big job's rows kept the writer's queue full).
    assert took <= 2 * ideal, (took, ideal)


@pytest.mark.parametrize("window", [256])  # a short backlog ahead of it: a short test
async def test_a_low_priority_job_progresses_within_the_aging_bound(
    service: Service, fake_llm: FakeLLM, window: int
) -> None:
    """Bound: its calls wait (priority difference) * fair_aging_s, plus the time to serve the
    calls that were waiting before then (at most the runner's window)."""
    latency_s = 0.3
    fake_llm.configure(latency_ms=latency_s * 1000)
    await service.client.post("/v1/graphs", json=ECHO_GRAPH)
    async with runner(service):
        big = await big_job(service, priority=0)
        service.runtime.runner.notify()  # type: ignore[union-attr]
        await saturated(service)
        backlog_s = window / MAX_CONCURRENT * latency_s
        # NOTE: 1.5x for the event loop and the database on a loaded test machine
        bound = 1.5 * (5 * AGING_S + backlog_s + 2 * latency_s)

        took = await timed(service.client, 2, 3 * bound, priority=5)

        await service.client.post(f"/v1/jobs/{big}/cancel")
    assert took <= bound, (took, bound)
