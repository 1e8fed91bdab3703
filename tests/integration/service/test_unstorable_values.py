"""A value the database cannot store fails its node and item; it never stops the writer."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.support.fake_llm import FakeLLM
from tests.support.service import Service

# ``parse_json`` of the text ``"a\u0000b"`` gives a string with a NUL character, which
# Postgres refuses in JSON and in text.
NUL_JSON = '"a\\u0000b"'
GRAPH = {
    "name": "parse",
    "inputs": {"x": {"type": "string"}},
    "nodes": [
        {"id": "parsed", "op": "parse_json", "source": "x"},
        {"id": "answer", "op": "llm", "alias": "fast", "system": "Echo.", "prompt": "{x}"},
    ],
    "outputs": {"parsed": "parsed", "answer": "answer"},
}
ITEMS, BAD = 40, 17
JOB_TIMEOUT_S = 60  # generous: a stuck writer never finishes at all


@pytest.mark.timeout(120)
async def test_a_nul_in_one_output_fails_that_item_and_the_job_completes(
    service: Service, fake_llm: FakeLLM
) -> None:
    assert (await service.client.post("/v1/graphs", json=GRAPH)).status_code == 201
    inputs: list[dict[str, Any]] = [{"x": f'"value {i}"'} for i in range(ITEMS)]
    inputs[BAD] = {"x": NUL_JSON}
    response = await service.client.post("/v1/jobs", json={"graph_id": "parse", "inputs": inputs})
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]

    async with asyncio.timeout(JOB_TIMEOUT_S):
        await service.run_jobs()

    job = (await service.client.get(f"/v1/jobs/{job_id}")).json()
    assert job["status"] == "completed"
    assert (job["counts"]["succeeded"], job["counts"]["failed"]) == (ITEMS - 1, 1)
    results = (await service.client.get(f"/v1/jobs/{job_id}/results")).json()["items"]
    good = [row for row in results if row["index"] != BAD]
    assert [row["output"]["parsed"] for row in good] == [
        f"value {i}" for i in range(ITEMS) if i != BAD
    ]

    item = (await service.client.get(f"/v1/jobs/{job_id}/items/{BAD}")).json()
    assert item["status"] == "failed"
    assert item["error"].startswith("parsed: UnstorableOutput: output cannot be stored")
    assert "NUL character" in item["error"]
    nodes = {node["node"]: node for node in item["nodes"]}
    assert nodes["parsed"]["status"] == "failed"
    assert nodes["parsed"]["output"] is None
    assert "output cannot be stored" in nodes["parsed"]["error"]
    assert nodes["answer"]["status"] == "succeeded"  # the item's other node is kept
    assert nodes["answer"]["output"].endswith(NUL_JSON)
    assert len(fake_llm.log()) == ITEMS


ECHO_PARSED = {
    "name": "echo-parsed",
    "inputs": {"x": {"type": "string"}},
    "nodes": [
        {"id": "parsed", "op": "parse_json", "source": "x"},
        {"id": "answer", "op": "llm", "alias": "fast", "system": "Echo.", "prompt": "{parsed}"},
    ],
    "outputs": {"answer": "answer"},
}


async def test_a_nul_in_a_failed_nodes_rendered_inputs_is_stored_escaped(
    service: Service, fake_llm: FakeLLM
) -> None:
    fake_llm.configure(rules=[{"match": "Echo.", "status": 400}])
    assert (await service.client.post("/v1/graphs", json=ECHO_PARSED)).status_code == 201
    body = {"graph_id": "echo-parsed", "inputs": [{"x": NUL_JSON}]}
    job_id = (await service.client.post("/v1/jobs", json=body)).json()["id"]
    await service.run_jobs()

    item = (await service.client.get(f"/v1/jobs/{job_id}/items/0")).json()
    nodes = {node["node"]: node for node in item["nodes"]}
    assert nodes["answer"]["status"] == "failed"
    escaped = "a\\u0000b"  # the six characters, on every backend
    assert nodes["answer"]["inputs"] == {"parsed": escaped, "system": "Echo.", "prompt": escaped}
