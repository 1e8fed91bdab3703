"""A node record has one shape, in ``/v1/runs`` and in ``/v1/jobs/{id}/items/{i}``, and the
OpenAPI document describes it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tests.support.fake_llm import FakeLLM
from tests.support.service import Service

INPUTS = {"doc1": "Cats purr.", "doc2": "Dogs bark."}


async def _run_nodes(service: Service) -> dict[str, dict[str, Any]]:
    body = {"graph_id": "extract-and-compare", "inputs": INPUTS}
    nodes: dict[str, dict[str, Any]] = (await service.client.post("/v1/runs", json=body)).json()[
        "nodes"
    ]
    return nodes


async def _item_nodes(service: Service) -> dict[str, dict[str, Any]]:
    body = {"graph_id": "extract-and-compare", "inputs": [INPUTS]}
    job = (await service.client.post("/v1/jobs", json=body)).json()
    await service.run_jobs()
    item = (await service.client.get(f"/v1/jobs/{job['id']}/items/0")).json()
    return {record["node"]: record for record in item["nodes"]}


async def test_a_job_items_node_records_have_the_fields_of_a_runs(
    service: Service, example_graph: dict[str, Any]
) -> None:
    await service.client.post("/v1/graphs", json=example_graph)
    ran, stored = await _run_nodes(service), await _item_nodes(service)
    assert set(ran) == set(stored) == {"facts1", "facts2", "compare"}
    for node in ran:
        assert set(stored[node]) == set(ran[node]), node
        assert set(stored[node]["usage"]) == set(ran[node]["usage"]), node
        for record in (ran[node], stored[node]):
            started, ended = record["started_at"], record["ended_at"]
            assert datetime.fromisoformat(started) <= datetime.fromisoformat(ended), node
    assert ran["compare"]["inputs"]["prompt"].startswith("Compare:")
    assert ran["compare"]["retries"] == []
    assert stored["compare"]["output"] == ran["compare"]["output"]


async def test_openapi_describes_node_records(service: Service) -> None:
    schemas = (await service.client.get("/openapi.json")).json()["components"]["schemas"]
    record = "#/components/schemas/NodeRecordOut"
    assert schemas["ItemDetail"]["properties"]["nodes"]["items"]["$ref"] == record
    assert schemas["RunResponse"]["properties"]["nodes"]["additionalProperties"]["$ref"] == record
    assert {"node", "status", "retries", "inputs", "started_at", "usage"} <= set(
        schemas["NodeRecordOut"]["properties"]
    )


async def test_a_failed_item_node_keeps_its_retries_and_rendered_inputs(
    service: Service, fake_llm: FakeLLM, example_graph: dict[str, Any]
) -> None:
    fake_llm.configure(rules=[{"match": "A0 ", "status": 503, "retry_after_s": 0}])
    await service.client.post("/v1/graphs", json=example_graph)
    inputs = {"doc1": "A0 electric.", "doc2": "B0 hydrogen."}
    job = (
        await service.client.post(
            "/v1/jobs", json={"graph_id": example_graph["name"], "inputs": [inputs]}
        )
    ).json()
    await service.run_jobs()
    item = (await service.client.get(f"/v1/jobs/{job['id']}/items/0")).json()
    nodes = {record["node"]: record for record in item["nodes"]}

    failed, succeeded = nodes["facts1"], nodes["facts2"]
    assert failed["status"] == "failed"
    assert failed["retries"] == ["TransientLLMError"] * 3  # the endpoint's max_retries
    assert failed["attempts"] == 4
    assert failed["inputs"] == {
        "doc1": "A0 electric.",
        "system": "Extract the main facts as a bulleted list.",
        "prompt": "A0 electric.",
    }
    assert succeeded["status"] == "succeeded"
    assert succeeded["retries"] == []
    assert succeeded["inputs"] is None
    assert succeeded["usage"]["finish_reason"] == "stop"
