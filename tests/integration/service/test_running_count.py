"""``counts.running`` is what a user reads as "being worked on": items whose model call has
begun and that have not ended. Items the runner merely admitted to its window, waiting for
their endpoint's concurrency, are still pending."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from app.settings import Settings
from tests.support.fake_llm import FakeLLM
from tests.support.graphs import ECHO_GRAPH
from tests.support.service import Service, endpoints_file

ITEMS = 40
MAX_CONCURRENT = 2
# A finished item is counted running until its row is written (one flush interval): with a
# 200 ms call and a 10 ms flush, at most one more finished item per slot is in that state.
HONEST_BOUND = 2 * MAX_CONCURRENT


@pytest.fixture
def settings(settings: Settings, fake_llm: FakeLLM, tmp_path: Path) -> Settings:
    """Two calls at a time on the endpoint; the runner's window (1,024) holds the whole job."""
    path = endpoints_file(tmp_path, fake_llm.base_url, max_concurrent=MAX_CONCURRENT)
    return Settings.model_validate({**settings.model_dump(), "endpoints_file": path})


async def counts_while_running(service: Service, job_id: str) -> list[dict[str, Any]]:
    seen = []
    while True:
        found = (await service.client.get(f"/v1/jobs/{job_id}")).json()
        if found["status"] not in ("queued", "running"):
            return seen
        seen.append(found["counts"])
        await asyncio.sleep(0.05)


async def test_items_waiting_for_a_call_slot_are_not_counted_running(
    service: Service, fake_llm: FakeLLM
) -> None:
    fake_llm.configure(latency_ms=200)
    await service.client.post("/v1/graphs", json=ECHO_GRAPH)
    body = {"graph_id": "echo", "inputs": [{"text": f"t{i}"} for i in range(ITEMS)]}
    job_id = (await service.client.post("/v1/jobs", json=body)).json()["id"]

    runner = asyncio.get_running_loop().create_task(service.run_jobs())
    seen = await counts_while_running(service, job_id)
    await runner

    mid_run = [c for c in seen if 0 < c["succeeded"] < ITEMS - HONEST_BOUND]
    assert mid_run, seen
    assert max(c["running"] for c in mid_run) <= HONEST_BOUND, mid_run
    assert min(c["running"] for c in mid_run) >= 1, mid_run
    assert all(c["pending"] + c["running"] + c["succeeded"] == ITEMS for c in mid_run)
