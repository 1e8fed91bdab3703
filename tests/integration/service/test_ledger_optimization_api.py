"""An optimization run again with ``cache: read`` makes no model call and ends the same,
trained on the simulated models of the fake server, on SQLite and Postgres."""

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


@pytest.fixture
def settings(settings: Settings, tmp_path: Path, fake_llm: FakeLLM) -> Settings:
    path = tmp_path / "optimization-endpoints.yaml"
    path.write_text(yaml.safe_dump(fake_server_endpoints(fake_llm.base_url, {})))
    data = {**settings.model_dump(), "endpoints_file": path, "max_dataset_items": 300}
    return Settings.model_validate(data)


async def small_task(client: httpx.AsyncClient) -> dict[str, str]:
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


async def optimize(service: Service, body: dict[str, Any]) -> dict[str, Any]:
    started = await service.client.post("/v1/optimizations", json=body)
    assert started.status_code == 202, started.text
    await service.run_jobs()
    return dict((await service.client.get(f"/v1/optimizations/{started.json()['id']}")).json())


def outcome(run: dict[str, Any]) -> tuple[Any, ...]:
    steps = [(s["step"], s["accepted"], s.get("score")) for s in run["steps"]]
    return run["state"], run["stop_reason"], run["best"]["score"], steps, run["test"]["mean"]


async def test_an_optimization_replayed_from_the_ledger_calls_no_model(
    service: Service, fake_llm: FakeLLM
) -> None:
    data = await small_task(service.client)
    first = await optimize(service, run_request(data, seed=3, cache="read_write"))
    assert first["state"] == "succeeded", first
    assert fake_llm.log()
    fake_llm.reset()

    again = await optimize(service, run_request(data, seed=3, cache="read"))

    assert fake_llm.log() == []
    assert outcome(again) == outcome(first)


async def test_an_unknown_cache_mode_of_an_optimization_is_refused(service: Service) -> None:
    data = await small_task(service.client)
    response = await service.client.post(
        "/v1/optimizations", json=run_request(data, seed=3, cache="always")
    )
    assert response.status_code == 422
    assert "cache" in response.text
