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


async def test_each_run_kind_answers_list_status_events_and_cancel_under_its_own_names(
    service: Service,
) -> None:
    found = await operations(service)
    for noun in ("evaluation", "optimization"):
        base, one = f"/v1/{noun}s", f"/v1/{noun}s/{{{noun}_id}}"
        named = {
            ("GET", base): f"list_{noun}s",
            ("GET", one): f"{noun}_status",
            ("GET", f"{one}/events"): f"{noun}_events",
            ("POST", f"{one}/cancel"): f"cancel_{noun}",
        }
        for (method, path), name in named.items():
            operation = found[(method, path)]
            assert operation["operationId"].startswith(f"{name}_v1_{noun}s"), (method, path)
            if path != base:
                assert f"{noun}_id" in [p["name"] for p in operation["parameters"]], path
        events = found[("GET", f"{one}/events")]
        assert "text/event-stream" in events["responses"]["200"]["content"]
        names = [p["name"] for p in events["parameters"]]
        assert {"after", "last-event-id"} <= set(names)
