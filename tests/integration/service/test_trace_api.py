"""``GET /v1/jobs/{id}/trace``: the job's Chrome trace, rebuilt from its stored node results."""

from __future__ import annotations

import itertools
from collections import defaultdict
from typing import Any

from tests.support.fake_llm import FakeLLM
from tests.support.service import Service

LATENCY_S = 0.05


async def traced_job(service: Service, fake_llm: FakeLLM, graph: dict[str, Any]) -> str:
    fake_llm.configure(latency_ms=LATENCY_S * 1000)
    await service.client.post("/v1/graphs", json=graph)
    inputs = [{"doc1": f"A{i}.", "doc2": f"B{i}."} for i in range(12)]
    job = await service.client.post("/v1/jobs", json={"graph_id": graph["name"], "inputs": inputs})
    await service.run_jobs()
    return str(job.json()["id"])


def spans(trace: dict[str, Any]) -> list[dict[str, Any]]:
    return [event for event in trace["traceEvents"] if event["ph"] == "X"]


async def test_every_stored_node_is_a_span_in_its_endpoints_lane(
    service: Service, fake_llm: FakeLLM, example_graph: dict[str, Any]
) -> None:
    job_id = await traced_job(service, fake_llm, example_graph)

    trace = (await service.client.get(f"/v1/jobs/{job_id}/trace")).json()

    found = spans(trace)
    assert sorted((s["args"]["run"], s["name"]) for s in found) == sorted(
        (str(i), node) for i in range(12) for node in ("facts1", "facts2", "compare")
    )
    lanes = {
        e["args"]["name"]: e["pid"] for e in trace["traceEvents"] if e["name"] == "process_name"
    }
    assert set(lanes) == {"endpoint fast", "endpoint smart"}
    for span in found:
        assert span["cat"] == "llm"
        assert (
            span["pid"] == lanes["endpoint smart" if span["name"] == "compare" else "endpoint fast"]
        )
        assert LATENCY_S * 1e6 <= span["dur"] < 30 * 1e6
    assert any(e["ph"] == "C" for e in trace["traceEvents"])  # calls in flight per endpoint
    assert trace["metadata"]["job_id"] == job_id


async def test_spans_of_one_item_follow_its_dependencies_and_slots_never_overlap(
    service: Service, fake_llm: FakeLLM, example_graph: dict[str, Any]
) -> None:
    job_id = await traced_job(service, fake_llm, example_graph)
    found = spans((await service.client.get(f"/v1/jobs/{job_id}/trace")).json())

    by_item: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for span in found:
        by_item[span["args"]["run"]][span["name"]] = span
    for nodes in by_item.values():
        extracted = max(nodes[n]["ts"] + nodes[n]["dur"] for n in ("facts1", "facts2"))
        assert nodes["compare"]["ts"] >= extracted - 1_000  # ends are stamped by wall clock
    by_slot: dict[tuple[int, int], list[tuple[float, float]]] = defaultdict(list)
    for span in found:
        by_slot[(span["pid"], span["tid"])].append((span["ts"], span["ts"] + span["dur"]))
    for intervals in by_slot.values():
        intervals.sort()
        assert all(end <= start for (_, end), (start, _) in itertools.pairwise(intervals))


async def test_a_range_of_items_and_unknown_jobs(
    service: Service, fake_llm: FakeLLM, example_graph: dict[str, Any]
) -> None:
    job_id = await traced_job(service, fake_llm, example_graph)

    part = (
        await service.client.get(f"/v1/jobs/{job_id}/trace", params={"after": 9, "items": 2})
    ).json()

    assert sorted({s["args"]["run"] for s in spans(part)}) == ["10", "11"]
    assert (await service.client.get("/v1/jobs/nope/trace")).status_code == 404
    too_many = await service.client.get(f"/v1/jobs/{job_id}/trace", params={"items": 0})
    assert too_many.status_code == 422
