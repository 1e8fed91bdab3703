"""A dry run's expected spend: the upper bound with no earlier run, and once a comparable run
of the graph finished (Task A trained on the fake server's simulated models by the job
runner), the upper bound scaled per role by what that run spent of its own bound. Another
tenant's runs, and runs with other settings, are never used."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from app.settings import Settings
from tests.support.fake_llm import FakeLLM
from tests.support.service import Service
from tests.support.sim_tasks import dataset_bodies, fake_server_endpoints, graph_json, run_request

NDJSON = {"content-type": "application/x-ndjson"}
ROLES = ("task", "judge", "backward", "optimizer", "validation")


@pytest.fixture
def settings(settings: Settings, tmp_path: Path, fake_llm: FakeLLM) -> Settings:
    config = fake_server_endpoints(fake_llm.base_url, {})
    for endpoint in config["endpoints"].values():
        endpoint.update(input_price_per_million=1.0, output_price_per_million=2.0)
    path = tmp_path / "expected-endpoints.yaml"
    path.write_text(yaml.safe_dump(config))
    data = {**settings.model_dump(), "endpoints_file": path, "max_dataset_items": 300}
    return Settings.model_validate(data)


async def upload_task_a(client: httpx.AsyncClient) -> dict[str, str]:
    """Task A's graph and train, val and test datasets of 10 items each."""
    graph = graph_json("task-a")
    assert (await client.post("/v1/graphs", json=graph)).status_code in (200, 201)
    ids = {}
    for name, body in dataset_bodies("task-a", 10).items():
        pushed = await client.post(
            "/v1/datasets", params={"name": name}, content=body, headers=NDJSON
        )
        assert pushed.status_code in (200, 201), pushed.text
        ids[name] = str(pushed.json()["id"])
    return {"graph_id": graph["name"], **ids}


async def dry_run(client: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/v1/optimizations", json={**body, "dry_run": True})
    assert response.status_code == 200, response.text
    return dict(response.json())


async def finished_run(
    service: Service, client: httpx.AsyncClient, body: dict[str, Any]
) -> dict[str, Any]:
    started = await client.post("/v1/optimizations", json=body)
    assert started.status_code == 202, started.text
    await service.run_jobs()
    run = (await client.get(f"/v1/optimizations/{started.json()['id']}")).json()
    assert (run["state"], run["stop_reason"]) == ("succeeded", "max_epochs"), run
    return dict(run)


def scaled(bound: dict[str, Any], past: dict[str, Any], run: dict[str, Any], name: str) -> int:
    """The formula on recorded figures: per role, the new bound times spent / the past bound."""
    total = 0
    for role in ROLES:
        before = past["roles"][role][name]
        if bound["roles"][role][name] and before:
            total += round(bound["roles"][role][name] * run_figure(run, role, name) / before)
    return total


def run_figure(run: dict[str, Any], role: str, name: str) -> float:
    usage = run["roles"].get(role, {})
    if name == "tokens":
        return float(usage.get("input_tokens", 0) + usage.get("output_tokens", 0))
    return float(usage.get(name, 0))


async def test_without_earlier_runs_the_expected_spend_is_the_upper_bound(
    service: Service,
) -> None:
    data = await upload_task_a(service.client)
    shown = await dry_run(service.client, run_request(data, seed=3))
    expected = shown["expected"]
    assert (expected["basis"], expected["runs"], expected["cost"]) == ("upper_bound", 0, None)
    assert expected["calls"] == shown["total"]["calls"]
    assert expected["tokens"] == shown["total"]["tokens"]


async def test_after_a_finished_run_the_bound_is_scaled_by_what_it_spent_of_its_own(
    service: Service,
) -> None:
    data = await upload_task_a(service.client)
    body = run_request(data, seed=3, schedule={"epochs": 2, "batch_size": 5})
    past = await dry_run(service.client, body)
    run = await finished_run(service, service.client, body)
    made = sum(int(usage["calls"]) for usage in run["roles"].values())
    assert made < past["total"]["calls"]  # the bound is not the calls made

    longer = run_request(data, seed=4, schedule={"epochs": 3, "batch_size": 5})
    shown = await dry_run(service.client, longer)

    expected = shown["expected"]
    assert (expected["basis"], expected["runs"]) == ("history", 1)
    assert shown["total"]["calls"] > past["total"]["calls"]  # a new bound, scaled
    assert expected["calls"] == scaled(shown, past, run, "calls")
    assert expected["calls"] < shown["total"]["calls"]
    assert expected["tokens"] == scaled(shown, past, run, "tokens")
    cost = sum(
        shown["roles"][role]["calls"] * run_figure(run, role, "cost") / past["roles"][role]["calls"]
        for role in ROLES
        if shown["roles"][role]["calls"]
    )
    assert expected["cost"] == pytest.approx(cost)
    assert cost > 0
    same = await dry_run(service.client, {**body, "seed": 5})
    assert same["expected"]["calls"] == made  # the same request: the calls that run made


async def test_another_tenants_runs_are_never_used(
    service: Service, other_tenant: httpx.AsyncClient
) -> None:
    theirs = await upload_task_a(other_tenant)
    await finished_run(service, other_tenant, run_request(theirs, seed=3))
    mine = await upload_task_a(service.client)

    shown = await dry_run(service.client, run_request(mine, seed=3))

    assert (shown["expected"]["basis"], shown["expected"]["runs"]) == ("upper_bound", 0)
    assert shown["expected"]["calls"] == shown["total"]["calls"]
    assert (await dry_run(other_tenant, run_request(theirs, seed=3)))["expected"]["runs"] == 1


async def test_a_run_with_other_settings_is_not_used(service: Service) -> None:
    data = await upload_task_a(service.client)
    await finished_run(service, service.client, run_request(data, seed=3))
    other = run_request(data, seed=3, optimizer={"conservatism": 0.9})

    shown = await dry_run(service.client, other)

    assert (shown["expected"]["basis"], shown["expected"]["calls"]) == (
        "upper_bound",
        shown["total"]["calls"],
    )
