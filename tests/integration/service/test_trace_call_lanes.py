"""A job's Chrome trace draws each model call from its slot to its answer, and its wait apart.

Drawn from the moment a node was ready, 300 items on an 8-slot alias took 300 lanes (each item
queued from the start); the calls themselves are never more than 8 at once.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from app.settings import Settings
from tests.support.fake_llm import FakeLLM
from tests.support.service import Service, endpoints_file

SLOTS = 8
ITEMS = 300
LATENCY_S = 0.02
GRAPH = {
    "name": "one-call",
    "inputs": {"text": {"type": "string"}},
    "nodes": [{"id": "answer", "op": "llm", "alias": "fast", "prompt": "{text}"}],
    "outputs": {"answer": "answer"},
}


@pytest.fixture
def settings(settings: Settings, fake_llm: FakeLLM, tmp_path: Path) -> Settings:
    """The service's settings with an alias of ``SLOTS`` concurrent calls."""
    endpoints = endpoints_file(tmp_path, fake_llm.base_url, max_concurrent=SLOTS)
    return Settings.model_validate({**settings.model_dump(), "endpoints_file": endpoints})


async def test_an_alias_shows_at_most_its_slots_as_call_lanes(
    service: Service, fake_llm: FakeLLM
) -> None:
    fake_llm.configure(latency_ms=LATENCY_S * 1000)
    trace = await _trace(service)

    process = {e["args"]["name"]: e["pid"] for e in trace["traceEvents"] if e["ph"] == "M"}
    calls = [e for e in trace["traceEvents"] if e["ph"] == "X"]
    assert len(calls) == ITEMS
    assert {e["pid"] for e in calls} == {process["endpoint fast"]}
    lanes = {e["tid"] for e in calls}
    assert len(lanes) <= SLOTS
    assert trace["metadata"]["call_lanes"] == {"fast": len(lanes)}
    assert all(e["dur"] >= LATENCY_S * 1e6 * 0.9 for e in calls)  # the call, not the wait
    _assert_no_overlap(calls)
    waits = [e for e in trace["traceEvents"] if e["ph"] == "b" and e["cat"] == "queue"]
    assert len(waits) >= ITEMS - 2 * SLOTS  # nearly every item waited for a slot
    peak = max(e["args"]["in_flight"] for e in trace["traceEvents"] if e["ph"] == "C")
    assert peak <= SLOTS


def _assert_no_overlap(calls: list[dict[str, Any]]) -> None:
    by_lane: dict[int, list[tuple[float, float]]] = defaultdict(list)
    for event in calls:
        by_lane[event["tid"]].append((event["ts"], event["ts"] + event["dur"]))
    for intervals in by_lane.values():
        intervals.sort()
        assert all(a[1] <= b[0] + 1.0 for a, b in itertools.pairwise(intervals))


async def _trace(service: Service) -> dict[str, Any]:
    await service.client.post("/v1/graphs", json=GRAPH)
    inputs = [{"text": f"item {i}"} for i in range(ITEMS)]
    job = await service.client.post("/v1/jobs", json={"graph_id": "one-call", "inputs": inputs})
    await service.run_jobs()
    job_id = job.json()["id"]
    answer = await service.client.get(f"/v1/jobs/{job_id}/trace", params={"items": ITEMS})
    assert answer.status_code == 200, answer.text
    trace: dict[str, Any] = answer.json()
    return trace
