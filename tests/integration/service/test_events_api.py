"""``GET /v1/jobs/{id}/events``: Server-Sent Events, resumable with ``Last-Event-ID``."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import httpx

from tests.support.fake_llm import FakeLLM
from tests.support.service import Service

ECHO_GRAPH = {
    "name": "echo",
    "inputs": {"text": {"type": "string"}},
    "nodes": [
        {"id": "answer", "op": "llm", "alias": "fast", "system": "Echo.", "prompt": "{text}"}
    ],
    "outputs": {"answer": "answer"},
}
TERMINAL = {"job_completed", "job_failed", "job_cancelled"}


@dataclass(frozen=True)
class Event:
    id: int
    kind: str
    data: dict[str, Any]


async def read_events(
    client: httpx.AsyncClient, job_id: str, headers: dict[str, str], stop_after: int | None = None
) -> list[Event]:
    """Events from one connection: all of them, or the first ``stop_after`` (then hang up)."""
    events: list[Event] = []
    fields: dict[str, str] = {}
    async with client.stream("GET", f"/v1/jobs/{job_id}/events", headers=headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        async for line in response.aiter_lines():
            if line.startswith(":"):
                continue  # a heartbeat
            if line:
                name, _, content = line.partition(": ")
                fields[name] = content
                continue
            if fields:
                events.append(Event(int(fields["id"]), fields["event"], json.loads(fields["data"])))
                fields = {}
            if stop_after is not None and len(events) == stop_after:
                break
    return events


async def submit(service: Service, count: int) -> str:
    await service.client.post("/v1/graphs", json=ECHO_GRAPH)
    inputs = [{"text": f"t{i}"} for i in range(count)]
    response = await service.client.post("/v1/jobs", json={"graph_id": "echo", "inputs": inputs})
    assert response.status_code == 202
    return str(response.json()["id"])


async def until_done(service: Service, job_id: str, items: int) -> None:
    """Poll until ``items`` items of the job succeeded."""
    async with asyncio.timeout(20):
        while True:
            status = (await service.client.get(f"/v1/jobs/{job_id}")).json()
            if status["counts"]["succeeded"] >= items:
                return
            await asyncio.sleep(0.05)


async def test_a_reconnecting_client_gets_every_missed_event_once_in_order(
    service: Service, fake_llm: FakeLLM
) -> None:
    fake_llm.configure(latency_ms=40)
    service.runtime.settings.runner_window = 4
    service.runtime.settings.progress_interval_s = 0.1
    job_id = await submit(service, 60)
    runner = asyncio.ensure_future(service.run_jobs())

    first = await read_events(service.client, job_id, {}, stop_after=5)
    await until_done(service, job_id, first_item_count(first) + 10)  # nobody listens meanwhile
    second = await read_events(service.client, job_id, {"Last-Event-ID": str(first[-1].id)})
    await asyncio.wait_for(runner, 30)

    everything = await read_events(service.client, job_id, {})
    seen = first + second
    assert [e.id for e in seen] == [e.id for e in everything]  # nothing missed, nothing twice
    assert [e.id for e in seen] == sorted({e.id for e in seen})
    assert seen[0].kind == "job_submitted"
    assert seen[-1].kind == "job_completed"
    assert seen[-1].data["counts"]["succeeded"] == 60
    items = [index for e in seen if e.kind == "items_succeeded" for index in e.data["indexes"]]
    assert sorted(items) == list(range(60))  # each item reported once
    assert any(e.kind == "progress" for e in second)


def first_item_count(events: list[Event]) -> int:
    return sum(len(e.data["indexes"]) for e in events if e.kind == "items_succeeded")


async def test_the_stream_ends_at_once_for_a_client_that_saw_the_last_event(
    service: Service,
) -> None:
    job_id = await submit(service, 3)
    await service.run_jobs()
    everything = await read_events(service.client, job_id, {})
    assert everything[-1].kind == "job_completed"

    async with asyncio.timeout(5):
        after_end = await read_events(
            service.client, job_id, {"Last-Event-ID": str(everything[-1].id)}
        )
        resumed = await read_events(
            service.client, job_id, {"Last-Event-ID": str(everything[1].id)}
        )

    assert after_end == []
    assert resumed == everything[2:]


async def test_cancelling_a_queued_job_ends_its_stream(service: Service) -> None:
    job_id = await submit(service, 5)
    cancelled = await service.client.post(f"/v1/jobs/{job_id}/cancel")
    assert cancelled.json()["counts"]["cancelled"] == 5

    async with asyncio.timeout(5):
        events = await read_events(service.client, job_id, {})

    assert [e.kind for e in events] == ["job_submitted", "job_cancelled"]
    assert events[-1].data["counts"]["cancelled"] == 5


async def test_a_bad_last_event_id_and_unknown_jobs_are_4xx(
    service: Service, other_tenant: httpx.AsyncClient
) -> None:
    job_id = await submit(service, 1)
    bad = await service.client.get(f"/v1/jobs/{job_id}/events", headers={"Last-Event-ID": "x1"})
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["field"] == "Last-Event-ID"
    assert (await service.client.get("/v1/jobs/nope/events")).status_code == 404
    assert (await other_tenant.get(f"/v1/jobs/{job_id}/events")).status_code == 404
