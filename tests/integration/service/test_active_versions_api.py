"""The active version of a graph over HTTP: uploads activate, promote and rollback move it, and
a job or run naming no version uses it."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.service import Service


def greeter(greeting: str) -> dict[str, Any]:
    """A graph whose output shows which version ran (its parameter is in it)."""
    return {
        "name": "greeter",
        "inputs": {"who": {"type": "string"}},
        "parameters": {"greeting": {"value": greeting}},
        "nodes": [{"id": "line", "op": "template", "text": "{greeting}, {who}"}],
        "outputs": {"line": "line"},
    }


async def upload(service: Service, greeting: str) -> dict[str, Any]:
    response = await service.client.post("/v1/graphs", json=greeter(greeting))
    assert response.status_code in (200, 201), response.text
    return dict(response.json())


async def three_versions(service: Service) -> None:
    for greeting in ("Hello", "Hi", "Hey"):
        await upload(service, greeting)


async def active(service: Service) -> int:
    return int((await service.client.get("/v1/graphs/greeter")).json()["active_version"])


async def ran(service: Service) -> str:
    """What ``POST /v1/runs`` naming no version answers."""
    body = {"graph_id": "greeter", "inputs": {"who": "Ada"}}
    response = await service.client.post("/v1/runs", json=body)
    assert response.status_code == 200, response.text
    return str(response.json()["outputs"]["line"])


async def job_version(service: Service) -> int:
    """The graph version a job naming no version was given."""
    body = {"graph_id": "greeter", "inputs": [{"who": "Ada"}]}
    response = await service.client.post("/v1/jobs", json=body)
    assert response.status_code == 202, response.text
    return int(response.json()["graph_version"])


async def test_each_upload_activates_its_version(service: Service) -> None:
    first = await upload(service, "Hello")
    second = await upload(service, "Hi")
    assert (first["active_version"], second["active_version"]) == (1, 2)
    assert (await active(service), await job_version(service), await ran(service)) == (
        2,
        2,
        "Hi, Ada",
    )


async def test_promote_makes_jobs_and_runs_without_a_version_use_it(service: Service) -> None:
    await three_versions(service)
    response = await service.client.post("/v1/graphs/greeter/promote", json={"version": 1})
    assert response.status_code == 200, response.text
    assert (response.json()["active_version"], response.json()["previous_version"]) == (1, 3)
    assert await job_version(service) == 1
    assert await ran(service) == "Hello, Ada"
    shown = (await service.client.get("/v1/graphs/greeter")).json()
    assert (shown["version"], shown["active_version"]) == (1, 1)
    assert shown["definition"]["parameters"]["greeting"]["value"] == "Hello"


async def test_versions_list_marks_the_active_one(service: Service) -> None:
    await three_versions(service)
    await service.client.post("/v1/graphs/greeter/promote", json={"version": 2})
    items = (await service.client.get("/v1/graphs/greeter/versions")).json()["items"]
    assert [(v["version"], v["active"]) for v in items] == [(1, False), (2, True), (3, False)]
    listed = (await service.client.get("/v1/graphs")).json()["items"]
    assert [(g["version"], g["active_version"]) for g in listed] == [(2, 2)]


async def test_rollback_restores_the_version_active_before_the_last_move(
    service: Service,
) -> None:
    await three_versions(service)
    await service.client.post("/v1/graphs/greeter/promote", json={"version": 1})
    response = await service.client.post("/v1/graphs/greeter/rollback")
    assert response.status_code == 200, response.text
    assert (response.json()["active_version"], response.json()["previous_version"]) == (3, 1)
    assert (await job_version(service), await ran(service)) == (3, "Hey, Ada")


async def test_rollback_after_uploads_goes_back_one_upload(service: Service) -> None:
    await three_versions(service)
    await service.client.post("/v1/graphs/greeter/rollback")
    assert await active(service) == 2
    again = await service.client.post("/v1/graphs/greeter/rollback")
    assert again.json()["active_version"] == 3  # a rollback undoes the last move, a rollback too


async def test_rollback_to_a_named_version(service: Service) -> None:
    await three_versions(service)
    response = await service.client.post("/v1/graphs/greeter/rollback", json={"version": 1})
    assert response.json()["active_version"] == 1
    assert await ran(service) == "Hello, Ada"


async def test_reuploading_old_content_makes_it_active(service: Service) -> None:
    await three_versions(service)
    again = await upload(service, "Hello")
    assert (again["created"], again["version"], again["active_version"]) == (False, 1, 1)
    assert (await job_version(service), await ran(service)) == (1, "Hello, Ada")
    versions = (await service.client.get("/v1/graphs/greeter/versions")).json()["items"]
    assert len(versions) == 3  # no new version was made


async def test_nothing_to_roll_back_to_is_a_conflict(service: Service) -> None:
    await upload(service, "Hello")
    response = await service.client.post("/v1/graphs/greeter/rollback")
    assert response.status_code == 409
    assert response.json()["type"] == "urn:inf-engine:problem:conflict"
    assert await active(service) == 1


async def test_promote_to_a_missing_version_names_the_field_and_moves_nothing(
    service: Service,
) -> None:
    await three_versions(service)
    for body in ({"version": 9}, {"version": 0}, {}, {"version": "2"}):
        response = await service.client.post("/v1/graphs/greeter/promote", json=body)
        assert response.status_code == 422, body
        assert response.json()["errors"][0]["field"] == "version"
    assert await active(service) == 3


async def test_another_tenant_cannot_promote_or_roll_back(
    service: Service, other_tenant: httpx.AsyncClient
) -> None:
    await three_versions(service)
    graph_id = (await service.client.get("/v1/graphs/greeter")).json()["id"]
    for ref in ("greeter", graph_id):
        promoted = await other_tenant.post(f"/v1/graphs/{ref}/promote", json={"version": 1})
        rolled = await other_tenant.post(f"/v1/graphs/{ref}/rollback")
        assert (promoted.status_code, rolled.status_code) == (404, 404)
    assert await active(service) == 3
