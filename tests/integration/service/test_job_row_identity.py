"""Job rows with identity: ``custom_id`` and ``metadata`` per input row, stored with the item
and carried into every read of its result, on SQLite and Postgres."""

from __future__ import annotations

import json
from typing import Any

import httpx

from app.services.requests.jobs import INSERT_BATCH
from tests.support.fake_llm import FakeLLM
from tests.support.graphs import ECHO_GRAPH
from tests.support.service import Service

JSONL = "application/x-ndjson"


def rows(count: int) -> list[dict[str, Any]]:
    """Even rows carry a custom_id and metadata; odd rows are plain inputs, as before."""
    return [
        {"text": f"row {i}", "custom_id": f"q-{i}", "metadata": {"split": "dev", "n": str(i)}}
        if i % 2 == 0
        else {"text": f"row {i}"}
        for i in range(count)
    ]


async def submit(service: Service, inputs: list[Any], graph: str = "echo") -> httpx.Response:
    return await service.client.post("/v1/jobs", json={"graph_id": graph, "inputs": inputs})


async def upload(service: Service, lines: list[Any]) -> httpx.Response:
    body = "".join(json.dumps(line) + "\n" for line in lines).encode()
    files = {"inputs": ("in.jsonl", body, JSONL)}
    return await service.client.post("/v1/jobs", data={"graph_id": "echo"}, files=files)


async def jsonl_results(service: Service, job_id: str, **params: str) -> list[dict[str, Any]]:
    response = await service.client.get(
        f"/v1/jobs/{job_id}/results", params={"format": "jsonl", **params}
    )
    assert response.status_code == 200, response.text
    return [json.loads(line) for line in response.text.splitlines()]


def identity(result: dict[str, Any]) -> tuple[Any, Any]:
    return result["custom_id"], result["metadata"]


async def test_results_pages_streams_and_items_carry_each_rows_identity(
    service: Service, fake_llm: FakeLLM
) -> None:
    await service.client.post("/v1/graphs", json=ECHO_GRAPH)
    inputs = rows(6)
    submitted = await submit(service, inputs)
    assert submitted.status_code == 202, submitted.text
    job_id = submitted.json()["id"]

    await service.run_jobs()

    page = (await service.client.get(f"/v1/jobs/{job_id}/results", params={"limit": 4})).json()
    rest = (await service.client.get(f"/v1/jobs/{job_id}/results?after={page['next']}")).json()
    listed = page["items"] + rest["items"]
    streamed = await jsonl_results(service, job_id)
    expected = [(row.get("custom_id"), row.get("metadata")) for row in inputs]
    assert [identity(item) for item in listed] == expected
    assert [identity(item) for item in streamed] == expected
    assert all(item["status"] == "succeeded" for item in streamed)
    assert streamed[4]["output"]["answer"].endswith("row 4")

    item = (await service.client.get(f"/v1/jobs/{job_id}/items/2")).json()
    assert identity(item) == ("q-2", {"split": "dev", "n": "2"})
    # The graph never sees the identity: the stored input and the prompt are the text alone.
    assert item["input"] == {"text": "row 2"}
    prompts = [json.dumps(call["body"]) for call in fake_llm.log()]
    assert len(prompts) == 6
    assert not any("q-" in prompt or "split" in prompt for prompt in prompts)


async def test_a_result_is_found_by_its_custom_id(
    service: Service, other_tenant: httpx.AsyncClient
) -> None:
    await service.client.post("/v1/graphs", json=ECHO_GRAPH)
    job_id = (await submit(service, rows(5))).json()["id"]
    await service.run_jobs()
    base = f"/v1/jobs/{job_id}/results"

    found = (await service.client.get(base, params={"custom_id": "q-4"})).json()
    missing = (await service.client.get(base, params={"custom_id": "q-1"})).json()
    streamed = await jsonl_results(service, job_id, custom_id="q-2")
    stranger = await other_tenant.get(base, params={"custom_id": "q-4"})

    assert [(item["index"], item["custom_id"]) for item in found["items"]] == [(4, "q-4")]
    assert found["items"][0]["output"]["answer"].endswith("row 4")
    assert missing == {"items": [], "next": None}
    assert [(item["index"], item["custom_id"]) for item in streamed] == [(2, "q-2")]
    assert stranger.status_code == 404


async def test_a_repeated_custom_id_is_refused_naming_both_rows(service: Service) -> None:
    await service.client.post("/v1/graphs", json=ECHO_GRAPH)
    inputs = [{"text": "a", "custom_id": "x"}, {"text": "b"}, {"text": "c", "custom_id": "x"}]

    response = await submit(service, inputs)

    assert response.status_code == 422, response.text
    error = response.json()["errors"][0]
    assert error["field"] == "inputs[2].custom_id"
    assert "inputs[0]" in error["message"]
    assert (await service.client.get("/v1/jobs")).json()["items"] == []


async def test_jsonl_rows_keep_their_identity_across_insert_batches(service: Service) -> None:
    await service.client.post("/v1/graphs", json=ECHO_GRAPH)
    count = INSERT_BATCH + 200
    lines = [{"text": f"line {i}", "custom_id": f"id-{i}"} for i in range(count)]

    response = await upload(service, lines)
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    await service.run_jobs()

    streamed = await jsonl_results(service, job_id)
    assert [item["custom_id"] for item in streamed] == [f"id-{i}" for i in range(count)]
    late = await jsonl_results(service, job_id, custom_id=f"id-{count - 1}")
    assert late[0]["output"]["answer"].endswith(f"line {count - 1}")


async def test_a_jsonl_repeat_in_a_later_insert_batch_is_refused_and_nothing_stays(
    service: Service,
) -> None:
    await service.client.post("/v1/graphs", json=ECHO_GRAPH)
    lines = [{"text": f"line {i}", "custom_id": f"id-{i}"} for i in range(INSERT_BATCH + 5)]
    lines[INSERT_BATCH + 3]["custom_id"] = "id-7"  # a row stored in the first batch already

    response = await upload(service, lines)

    assert response.status_code == 422, response.text
    error = response.json()["errors"][0]
    assert (error["field"], error["line"]) == (f"inputs[{INSERT_BATCH + 3}].custom_id", 1004)
    assert "inputs[7]" in error["message"]
    assert (await service.client.get("/v1/jobs")).json()["items"] == []


async def test_a_graph_input_named_metadata_stays_an_input(service: Service) -> None:
    graph = {
        "name": "tagged",
        "inputs": {"text": {"type": "string"}, "metadata": {"type": "object"}},
        "nodes": [{"id": "t", "op": "template", "text": "{text}/{metadata.tag}"}],
        "outputs": {"out": "t"},
    }
    assert (await service.client.post("/v1/graphs", json=graph)).status_code == 201
    row = {"text": "a", "metadata": {"tag": 7}, "custom_id": "only-id"}
    job_id = (await submit(service, [row], graph="tagged")).json()["id"]
    await service.run_jobs()

    [result] = await jsonl_results(service, job_id)
    assert result["output"] == {"out": "a/7"}
    assert identity(result) == ("only-id", None)
