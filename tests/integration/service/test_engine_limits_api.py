"""One tenant's graph cannot stall or exhaust the service: ReDoS, template bombs, huge templates."""

from __future__ import annotations

import time

from tests.integration.service.test_jobs_api import ECHO_GRAPH, status, submit
from tests.support.fake_llm import FakeLLM
from tests.support.graphs import bomb_graph, classify_graph
from tests.support.service import Service

REDOS_GRAPH = classify_graph("(a+)+$", name="redos")


async def test_catastrophic_pattern_answers_at_once_through_runs(service: Service) -> None:
    assert (await service.client.post("/v1/graphs", json=REDOS_GRAPH)).status_code == 201
    started = time.monotonic()
    response = await service.client.post(
        "/v1/runs", json={"graph_id": "redos", "inputs": {"text": "a" * 30 + "!"}}
    )
    elapsed = time.monotonic() - started
    assert response.status_code == 200, response.text
    assert response.json()["outputs"] == {"kind": "fine"}
    # A backtracking engine needs minutes for this (doubling per 'a'); RE2 needs microseconds.
    assert elapsed < 15


async def test_pattern_re2_cannot_run_is_a_422_naming_node_and_label(service: Service) -> None:
    graph = {**REDOS_GRAPH, "nodes": [{**REDOS_GRAPH["nodes"][0], "labels": {"twice": r"(a)\1"}}]}
    response = await service.client.post("/v1/graphs", json=graph)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    [error] = response.json()["errors"]
    assert (error["node"], error["field"]) == ("kind", "labels.twice")
    assert "invalid regular expression" in error["message"]


async def test_oversized_template_is_a_422_naming_field_and_setting(service: Service) -> None:
    graph = bomb_graph(1)
    graph["nodes"][0]["text"] = "{x}" + "z" * 70_000
    response = await service.client.post("/v1/graphs", json=graph)
    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert (error["node"], error["field"]) == ("t0", "text")
    assert error["message"] == (
        "template is 70,003 bytes, over the template limit of 65,536 (INF_MAX_TEMPLATE_BYTES)"
    )


async def test_template_bomb_fails_its_item_naming_the_limit_and_the_rest_completes(
    service: Service, fake_llm: FakeLLM
) -> None:
    await service.client.post("/v1/graphs", json=bomb_graph())
    await service.client.post("/v1/graphs", json=ECHO_GRAPH)
    # 1 KiB doubled 21 times would be 2 GiB; an empty input doubles to nothing.
    bomb = await submit(service, "bomb", [{"x": "x" * 1024}, {"x": ""}])
    echo = await submit(service, "echo", [{"text": f"t{i}"} for i in range(5)])

    await service.run_jobs()

    done = await status(service, bomb["id"])
    assert (done["status"], done["counts"]["succeeded"], done["counts"]["failed"]) == (
        "completed",
        1,
        1,
    )
    item = (await service.client.get(f"/v1/jobs/{bomb['id']}/items/0")).json()
    assert item["status"] == "failed"
    assert (
        "output of node 't10' would be at least 2,097,152 bytes, over the node output limit "
        "of 1,048,576 (INF_MAX_NODE_OUTPUT_BYTES)"
    ) in item["error"]
    nodes = {node["node"]: node for node in item["nodes"]}
    assert len(nodes["t9"]["output"]) == 1024 * 1024
    assert (await status(service, echo["id"]))["counts"]["succeeded"] == 5


async def test_template_bomb_through_runs_fails_the_node_naming_the_setting(
    service: Service,
) -> None:
    await service.client.post("/v1/graphs", json=bomb_graph())
    response = await service.client.post(
        "/v1/runs", json={"graph_id": "bomb", "inputs": {"x": "x" * 1024}}
    )
    body = response.json()
    assert (response.status_code, body["status"], body["failed_nodes"]) == (200, "failed", ["t10"])
    assert "(INF_MAX_NODE_OUTPUT_BYTES)" in body["nodes"]["t10"]["error"]
    assert body["nodes"]["t11"]["status"] == "cancelled"
