"""The OpenAPI document tells clients what errors look like: problem details for every 4xx."""

from __future__ import annotations

from typing import Any

from tests.support.service import Service

PROBLEM_JSON = "application/problem+json"


async def operations(service: Service) -> dict[tuple[str, str], dict[str, Any]]:
    response = await service.client.get("/openapi.json")
    assert response.status_code == 200
    return {
        (method.upper(), path): operation
        for path, item in response.json()["paths"].items()
        for method, operation in item.items()
    }


async def test_every_operation_documents_its_errors_as_problem_details(service: Service) -> None:
    for (method, path), operation in (await operations(service)).items():
        responses = operation["responses"]
        for status in ("400", "401", "404", "413", "422"):
            content = responses[status]["content"]
            assert list(content) == [PROBLEM_JSON], (method, path, status)
            assert "type" in content[PROBLEM_JSON]["schema"]["properties"]


async def test_json_bodies_are_documented_with_their_content_types(service: Service) -> None:
    found = await operations(service)
    run_body = found[("POST", "/v1/runs")]["requestBody"]["content"]
    assert set(run_body) == {"application/json"}
    assert "graph_id" in run_body["application/json"]["schema"]["properties"]
    job_body = found[("POST", "/v1/jobs")]["requestBody"]["content"]
    assert set(job_body) == {"application/json", "multipart/form-data"}
    assert "415" in found[("POST", "/v1/graphs")]["responses"]
