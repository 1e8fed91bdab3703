"""``POST /v1/runs``: one input, synchronously, outputs and every node's record."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy.pool import QueuePool

from tests.support.fake_llm import FakeLLM
from tests.support.service import Service


async def test_run_returns_outputs_and_node_records(
    service: Service, fake_llm: FakeLLM, example_graph: dict[str, Any]
) -> None:
    await service.client.post("/v1/graphs", json=example_graph)
    inputs = {"doc1": "Cats purr.", "doc2": "Dogs bark."}
    response = await service.client.post(
        "/v1/runs", json={"graph_id": "extract-and-compare", "inputs": inputs}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "succeeded"
    nodes = body["nodes"]
    assert set(nodes) == {"facts1", "facts2", "compare"}
    assert nodes["facts1"]["usage"]["alias"] == "fast"
    assert (
        nodes["compare"]["inputs"]["prompt"]
        == f"Compare:\n{nodes['facts1']['output']}\n\nvs:\n{nodes['facts2']['output']}"
    )
    assert body["outputs"] == {"comparison": nodes["compare"]["output"]}
    assert len(fake_llm.log()) == 3


async def test_failed_node_is_reported_in_the_answer(
    service: Service, fake_llm: FakeLLM, example_graph: dict[str, Any]
) -> None:
    fake_llm.configure(rules=[{"match": "Dogs", "status": 400}])
    await service.client.post("/v1/graphs", json=example_graph)
    inputs = {"doc1": "Cats purr.", "doc2": "Dogs bark."}
    body = (
        await service.client.post(
            "/v1/runs", json={"graph_id": "extract-and-compare", "inputs": inputs}
        )
    ).json()
    assert (body["status"], body["failed_nodes"]) == ("failed", ["facts2"])
    assert body["nodes"]["compare"]["status"] == "cancelled"
    assert body["nodes"]["facts1"]["status"] == "succeeded"


async def test_a_run_holds_no_pooled_connection_while_its_llm_calls_run(
    service: Service, fake_llm: FakeLLM, example_graph: dict[str, Any]
) -> None:
    """A synchronous run reads its graph and gives the connection back before it runs: on
    Postgres a held session is one idle-in-transaction connection per run in progress."""
    await service.client.post("/v1/graphs", json=example_graph)
    fake_llm.configure(latency_ms=600)
    inputs = {"doc1": "Cats purr.", "doc2": "Dogs bark."}
    body = {"graph_id": "extract-and-compare", "inputs": inputs}
    run = asyncio.create_task(service.client.post("/v1/runs", json=body))
    for _ in range(250):  # until the first LLM call is in flight
        if fake_llm.log():
            break
        await asyncio.sleep(0.02)
    pool = service.runtime.engine.pool
    assert isinstance(pool, QueuePool)
    assert pool.checkedout() == 0
    assert (await run).status_code == 200
