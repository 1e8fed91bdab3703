"""Graph uploads over HTTP: validation, idempotent versions, reads, history, DOT."""

from __future__ import annotations

import copy
from typing import Any

import yaml

from tests.support.service import Service


async def test_upload_is_idempotent_and_versions_count_up(
    service: Service, example_graph: dict[str, Any]
) -> None:
    first = await service.client.post("/v1/graphs", json=example_graph)
    assert first.status_code == 201
    body = first.json()
    assert (body["name"], body["version"], body["created"]) == ("extract-and-compare", 1, True)
    again = await service.client.post("/v1/graphs", json=example_graph)
    assert again.status_code == 200
    assert (again.json()["version"], again.json()["hash"]) == (1, body["hash"])

    changed = copy.deepcopy(example_graph)
    changed["parameters"]["style"]["value"] = "Be brief."
    second = await service.client.post("/v1/graphs", json=changed)
    assert (second.status_code, second.json()["version"], second.json()["id"]) == (
        201,
        2,
        body["id"],
    )


async def test_yaml_upload_equals_json_upload(
    service: Service, example_graph: dict[str, Any]
) -> None:
    as_yaml = yaml.safe_dump(example_graph)
    first = await service.client.post(
        "/v1/graphs", content=as_yaml, headers={"content-type": "application/yaml"}
    )
    second = await service.client.post("/v1/graphs", json=example_graph)
    assert first.status_code == 201
    assert (second.status_code, second.json()["hash"]) == (200, first.json()["hash"])


async def test_read_latest_or_a_version_by_id_or_name(
    service: Service, example_graph: dict[str, Any]
) -> None:
    graph_id = (await service.client.post("/v1/graphs", json=example_graph)).json()["id"]
    changed = copy.deepcopy(example_graph)
    changed["parameters"]["style"]["value"] = "Be brief."
    await service.client.post("/v1/graphs", json=changed)

    latest = (await service.client.get("/v1/graphs/extract-and-compare")).json()
    first = (await service.client.get(f"/v1/graphs/{graph_id}", params={"version": 1})).json()
    assert latest["version"] == 2
    assert latest["definition"]["parameters"]["style"]["value"] == "Be brief."
    assert (
        first["definition"]["parameters"]["style"]["value"]
        == example_graph["parameters"]["style"]["value"]
    )

    history = (await service.client.get(f"/v1/graphs/{graph_id}/versions")).json()["items"]
    assert [entry["version"] for entry in history] == [1, 2]
    assert history[1]["parameter_changes"] == [
        {
            "name": "style",
            "before": "Highlight key similarities and differences.",
            "after": "Be brief.",
        }
    ]
    listing = (await service.client.get("/v1/graphs")).json()
    assert [(g["name"], g["version"]) for g in listing["items"]] == [("extract-and-compare", 2)]


async def test_dot_export(service: Service, example_graph: dict[str, Any]) -> None:
    await service.client.post("/v1/graphs", json=example_graph)
    response = await service.client.get("/v1/graphs/extract-and-compare/dot")
    assert response.headers["content-type"].startswith("text/vnd.graphviz")
    assert '"facts1" -> "compare"' in response.text


async def test_invalid_graph_errors_name_node_and_field(
    service: Service, example_graph: dict[str, Any]
) -> None:
    broken = copy.deepcopy(example_graph)
    broken["nodes"][2]["prompt"] = "Compare {facts1} with {facts3}"
    broken["nodes"][0]["alias"] = "gigantic"
    response = await service.client.post("/v1/graphs", json=broken)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    errors = response.json()["errors"]
    assert {"node": "compare", "field": "prompt", "message": "unknown name 'facts3'"} in errors
    assert any(e["node"] == "facts1" and e["field"] == "alias" for e in errors)


async def test_schema_and_semantic_errors_come_in_one_answer(
    service: Service, example_graph: dict[str, Any]
) -> None:
    """A field of the wrong type in one node does not hide an unknown name in another."""
    broken = copy.deepcopy(example_graph)
    broken["nodes"][0]["max_tokens"] = "many"  # schema: not an integer
    broken["nodes"][2]["prompt"] = "Compare {facts1} with {facts3}"  # semantic: unknown name
    response = await service.client.post("/v1/graphs", json=broken)
    assert response.status_code == 422
    errors = response.json()["errors"]
    # Schema errors first; the broken node still counts as defined ({facts1} is not unknown).
    assert [(e["node"], e["field"]) for e in errors] == [
        ("facts1", "max_tokens"),
        ("compare", "prompt"),
    ]
    assert errors[1]["message"] == "unknown name 'facts3'"


async def test_a_graph_without_node_list_gets_its_schema_errors_alone(
    service: Service, example_graph: dict[str, Any]
) -> None:
    """Where the schema errors leave nothing to check (no node list), they are the answer."""
    broken = {**example_graph, "nodes": "none"}
    response = await service.client.post("/v1/graphs", json=broken)
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["nodes"]
