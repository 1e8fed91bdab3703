"""The response ledger through the service: jobs recorded, replayed and strictly replayed,
counted at the fake server over real HTTP, on SQLite and Postgres."""

from __future__ import annotations

import copy
from collections import Counter
from datetime import timedelta
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from app.db.base import utcnow
from app.db.models import LedgerRecord
from app.services.observability.metrics import ServiceMetrics
from app.services.runner.retention import RetentionSweeper
from app.settings import Settings
from tests.support.fake_llm import FakeLLM
from tests.support.service import Service

# a -> b -> c, and d beside them; every prompt names its node, so the server's log says
# which node each call was.
CHAIN: dict[str, Any] = {
    "name": "ledger-chain",
    "inputs": {"doc": {"type": "string"}},
    "nodes": [
        {"id": "a", "op": "llm", "alias": "fast", "prompt": "A: {doc}", "temperature": 0.0},
        {"id": "b", "op": "llm", "alias": "fast", "prompt": "B: {a}", "temperature": 0.0},
        {"id": "c", "op": "llm", "alias": "smart", "prompt": "C: {b}"},
        {"id": "d", "op": "llm", "alias": "fast", "prompt": "D: {doc}", "seed": 7},
    ],
    "outputs": {"c": "c", "d": "d"},
}
# Two nodes making the same call: two deliberate samples of one request.
TWINS: dict[str, Any] = {
    "name": "ledger-twins",
    "inputs": {"doc": {"type": "string"}},
    "nodes": [
        {"id": "s1", "op": "llm", "alias": "fast", "prompt": "Vote: {doc}", "temperature": 1.0},
        {"id": "s2", "op": "llm", "alias": "fast", "prompt": "Vote: {doc}", "temperature": 1.0},
    ],
    "outputs": {"s1": "s1", "s2": "s2"},
}
INPUTS = [{"doc": f"document {i}"} for i in range(5)]


async def upload(client: httpx.AsyncClient, graph: dict[str, Any]) -> None:
    response = await client.post("/v1/graphs", json=graph)
    assert response.status_code in (200, 201), response.text


async def run_job(
    service: Service, graph: str, client: httpx.AsyncClient | None = None, **extra: Any
) -> dict[str, Any]:
    """Submit, run to the end, and return the job's status and its results."""
    client = client or service.client
    body = {"graph_id": graph, "inputs": INPUTS, **extra}
    submitted = await client.post("/v1/jobs", json=body)
    assert submitted.status_code == 202, submitted.text
    job_id = submitted.json()["id"]
    await service.run_jobs()
    status = (await client.get(f"/v1/jobs/{job_id}")).json()
    results = (await client.get(f"/v1/jobs/{job_id}/results")).json()
    return {**status, "results": results["items"]}


def calls_by_node(fake_llm: FakeLLM) -> Counter[str]:
    """The calls the server received, by the node whose prompt it was (its first letter)."""
    return Counter(entry["prompt"][0] for entry in fake_llm.log())


async def test_a_rerun_with_cache_read_makes_no_calls_and_gives_identical_results(
    service: Service, fake_llm: FakeLLM
) -> None:
    fake_llm.configure(unique_replies=True)  # a fresh answer never equals a recorded one
    await upload(service.client, CHAIN)
    first = await run_job(service, "ledger-chain", cache="read_write")
    assert first["counts"]["succeeded"] == 5
    assert len(fake_llm.log()) == 20
    fake_llm.reset()

    again = await run_job(service, "ledger-chain", cache="read")

    assert fake_llm.log() == []
    assert again["results"] == first["results"]
    assert (again["cache"], again["usage"]["calls_saved"], first["usage"]["calls_saved"]) == (
        "read",
        20,
        0,
    )
    assert again["usage"]["input_tokens"] == 0
    hits = await ledger_lookups(service)
    assert hits == {("fast", "hit"): 15, ("smart", "hit"): 5, ("fast", "miss"): 15,
                    ("smart", "miss"): 5}  # fmt: skip


async def test_changing_one_nodes_temperature_calls_that_node_and_its_descendants_only(
    service: Service, fake_llm: FakeLLM
) -> None:
    fake_llm.configure(unique_replies=True)
    await upload(service.client, CHAIN)
    first = await run_job(service, "ledger-chain", cache="read_write")
    fake_llm.reset()
    changed = copy.deepcopy(CHAIN)
    changed["nodes"][1]["temperature"] = 0.7
    await upload(service.client, changed)

    again = await run_job(service, "ledger-chain", cache="read_write")

    assert calls_by_node(fake_llm) == {"B": 5, "C": 5}
    assert again["usage"]["calls_saved"] == 10  # a and d of every item
    for old, new in zip(first["results"], again["results"], strict=True):
        assert new["output"]["d"] == old["output"]["d"]
        assert new["output"]["c"] != old["output"]["c"]


async def test_strict_replay_of_a_changed_graph_fails_the_first_differing_node_naming_the_field(
    service: Service, fake_llm: FakeLLM
) -> None:
    await upload(service.client, CHAIN)
    await run_job(service, "ledger-chain", cache="read_write")
    fake_llm.reset()
    changed = copy.deepcopy(CHAIN)
    changed["nodes"][1]["temperature"] = 0.7
    await upload(service.client, changed)

    job = await run_job(service, "ledger-chain", replay="strict")

    assert fake_llm.log() == []
    assert (job["counts"]["failed"], job["replay"]) == (5, "strict")
    item = (await service.client.get(f"/v1/jobs/{job['id']}/items/0")).json()
    nodes = {node["node"]: node for node in item["nodes"]}
    assert {n: nodes[n]["status"] for n in "abcd"} == {
        "a": "succeeded",
        "b": "failed",
        "c": "cancelled",
        "d": "succeeded",
    }
    assert nodes["b"]["error_type"] == "LedgerMissError"
    assert "node 'b'" in nodes["b"]["error"]
    assert "field 'temperature'" in nodes["b"]["error"]
    assert "recorded 0.0, now 0.7" in nodes["b"]["error"]


async def test_strict_replay_of_an_unchanged_graph_passes_without_a_call(
    service: Service, fake_llm: FakeLLM
) -> None:
    await upload(service.client, CHAIN)
    first = await run_job(service, "ledger-chain", cache="read_write")
    fake_llm.reset()

    job = await run_job(service, "ledger-chain", replay="strict")

    assert fake_llm.log() == []
    assert job["counts"]["succeeded"] == 5
    assert job["results"] == first["results"]


async def test_two_samples_of_one_request_both_reach_the_server_and_replay_apart(
    service: Service, fake_llm: FakeLLM
) -> None:
    fake_llm.configure(unique_replies=True)
    await upload(service.client, TWINS)
    first = await run_job(service, "ledger-twins", cache="read_write")
    assert len(fake_llm.log()) == 10  # both samples of every item were asked for
    fake_llm.reset()

    again = await run_job(service, "ledger-twins", cache="read")

    assert fake_llm.log() == []
    assert again["results"] == first["results"]
    for item in again["results"]:
        assert item["output"]["s1"] != item["output"]["s2"]


async def test_an_error_response_is_not_replayed(service: Service, fake_llm: FakeLLM) -> None:
    fake_llm.configure(rules=[{"match": "A: document 2", "status": 400, "times": 1}])
    await upload(service.client, CHAIN)
    first = await run_job(service, "ledger-chain", cache="read_write")
    assert first["counts"]["failed"] == 1
    assert [e["status"] for e in fake_llm.log()].count(400) == 1
    fake_llm.configure()  # the server answers every request now
    fake_llm.reset()

    again = await run_job(service, "ledger-chain", cache="read_write")

    assert again["counts"]["succeeded"] == 5
    assert calls_by_node(fake_llm) == {"A": 1, "B": 1, "C": 1}  # item 2's a and what needs it
    assert [e["status"] for e in fake_llm.log()] == [200, 200, 200]


async def test_tenant_b_never_gets_tenant_as_recorded_answers(
    service: Service, fake_llm: FakeLLM, other_tenant: httpx.AsyncClient
) -> None:
    fake_llm.configure(unique_replies=True)
    await upload(service.client, CHAIN)
    await upload(other_tenant, CHAIN)
    mine = await run_job(service, "ledger-chain", cache="read_write")
    fake_llm.reset()

    theirs = await run_job(service, "ledger-chain", other_tenant, cache="read_write")

    assert len(fake_llm.log()) == 20
    assert theirs["usage"]["calls_saved"] == 0
    for a, b in zip(mine["results"], theirs["results"], strict=True):
        assert a["output"] != b["output"]


async def test_an_unknown_cache_mode_is_refused_naming_the_field(service: Service) -> None:
    await upload(service.client, CHAIN)
    body = {"graph_id": "ledger-chain", "inputs": INPUTS, "cache": "sometimes"}
    response = await service.client.post("/v1/jobs", json=body)
    assert response.status_code == 422
    assert "cache" in response.text


async def test_a_run_replays_what_a_job_recorded(service: Service, fake_llm: FakeLLM) -> None:
    await upload(service.client, CHAIN)
    job = await run_job(service, "ledger-chain", cache="read_write")
    fake_llm.reset()
    body = {"graph_id": "ledger-chain", "inputs": INPUTS[0], "replay": "strict"}

    response = await service.client.post("/v1/runs", json=body)

    assert response.status_code == 200, response.text
    assert fake_llm.log() == []
    assert response.json()["outputs"] == job["results"][0]["output"]
    assert response.json()["usage"]["calls_saved"] == 4


async def ledger_lookups(service: Service) -> dict[tuple[str, str], float]:
    text = (await service.client.get("/metrics")).text
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "inf_ledger_lookups_total":
                found[sample.labels["alias"], sample.labels["status"]] = sample.value
    return found


async def test_retention_deletes_entries_older_than_the_ledger_retention(
    service: Service, fake_llm: FakeLLM
) -> None:
    await upload(service.client, CHAIN)
    await run_job(service, "ledger-chain", cache="read_write")
    settings = Settings(retention_days=0, ledger_retention_days=30)
    sweeper = RetentionSweeper(service.runtime.sessions, settings, ServiceMetrics("runner"))

    await sweeper.sweep(now=utcnow() + timedelta(days=29))
    assert await ledger_rows(service) == 20
    await sweeper.sweep(now=utcnow() + timedelta(days=31))
    assert await ledger_rows(service) == 0


async def ledger_rows(service: Service) -> int:
    async with service.runtime.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(LedgerRecord)) or 0)
