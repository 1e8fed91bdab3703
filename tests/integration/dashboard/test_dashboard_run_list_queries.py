"""The evaluation and optimization lists cost a fixed number of SQL statements: ten times the
rows add none (no N+1), and the means the list computes in SQL are the API's results."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import yaml

from app.settings import Settings
from tests.integration.dashboard.test_dashboard_queries import page_statements
from tests.support.fake_llm import FakeLLM
from tests.support.service import Service, serve
from tests.support.sim_tasks import dataset_bodies, fake_server_endpoints, graph_json, run_request

NDJSON = {"content-type": "application/x-ndjson"}
ANSWER = {"verifiers": [{"op": "answer_equals"}]}


@pytest.fixture
async def quiet(ui_settings: Settings, fake_llm: FakeLLM, tmp_path: Path) -> AsyncIterator[Service]:
    """The simulated roles on the fake server; no runner of the service's own (``run_jobs``
    runs the queued runs in between)."""
    path = tmp_path / "sim-endpoints.yaml"
    path.write_text(yaml.safe_dump(fake_server_endpoints(fake_llm.base_url)))
    update = {"endpoints_file": path, "runner_enabled": False, "max_dataset_items": 300}
    async with serve(ui_settings.model_copy(update=update)) as running:
        yield running


async def task_a(client: httpx.AsyncClient) -> dict[str, str]:
    """Task A's graph in two versions (the second's instructions differ) and its splits."""
    graph = graph_json("task-a")
    for _ in range(2):
        assert (await client.post("/v1/graphs", json=graph)).status_code in (200, 201)
        graph["parameters"]["instructions"]["value"] += " Count carefully."
    ids = {"graph_id": graph["name"]}
    for name, body in dataset_bodies("task-a", 3).items():
        pushed = await client.post(
            "/v1/datasets", params={"name": name}, content=body, headers=NDJSON
        )
        assert pushed.status_code in (200, 201), pushed.text
        ids[name] = str(pushed.json()["id"])
    return ids


async def evaluate(client: httpx.AsyncClient, data: dict[str, str], count: int) -> None:
    for n in range(count):
        versions = {"versions": [1, 2]} if n % 2 else {"version": 1}
        body = {"graph_id": data["graph_id"], "dataset": data["train"], "loss": ANSWER}
        answer = await client.post("/v1/evaluations", json={**body, **versions})
        assert answer.status_code == 202, answer.text


def listed_means(html: str, evaluation_id: str) -> list[tuple[int, str]]:
    row = re.search(
        rf'data-evaluation="{evaluation_id}".*?data-field="scores">(.*?)</td>', html, re.S
    )
    assert row is not None
    return [(int(v), mean) for v, mean in re.findall(r"v(\d+): ([0-9.]+)", row.group(1))]


async def test_the_evaluation_lists_cost_the_same_for_three_rows_or_thirty(quiet: Service) -> None:
    client = quiet.client
    data = await task_a(client)
    await evaluate(client, data, 3)
    await quiet.run_jobs()
    few = [await page_statements(quiet, p) for p in ("/ui/evaluations", "/ui/optimizations")]
    await evaluate(client, data, 27)
    await quiet.run_jobs()
    many = [await page_statements(quiet, p) for p in ("/ui/evaluations", "/ui/optimizations")]
    assert many == few

    html = (await client.get("/ui/evaluations")).text
    for item in (await client.get("/v1/evaluations", params={"limit": 30})).json()["items"]:
        result = (await client.get(f"/v1/evaluations/{item['id']}")).json()["result"]
        shown = [(v["version"], f"{v['mean']:.3f}") for v in result["versions"]]
        assert listed_means(html, item["id"]) == shown
        assert len(shown) in (1, 2)


async def test_the_optimization_list_costs_the_same_for_three_runs_or_thirty(
    quiet: Service,
) -> None:
    client = quiet.client
    data = await task_a(client)

    async def start(count: int) -> None:
        for seed in range(count):
            answer = await client.post("/v1/optimizations", json=run_request(data, seed=seed))
            assert answer.status_code == 202, answer.text

    await start(3)
    few = await page_statements(quiet, "/ui/optimizations")
    api_few = await page_statements(quiet, "/v1/optimizations")
    await start(27)
    assert await page_statements(quiet, "/ui/optimizations") == few
    assert await page_statements(quiet, "/v1/optimizations") == api_few
    assert few <= 8


async def test_bad_paging_input_is_a_4xx_naming_the_field(quiet: Service) -> None:
    answer = await quiet.client.get("/ui/evaluations", params={"before": "yesterday"})
    assert answer.status_code == 400
    assert "before" in answer.text
    answer = await quiet.client.get("/ui/evaluations/some-id", params={"after": "first"})
    assert answer.status_code == 422
    assert "after" in answer.text
    assert (await quiet.client.get("/ui/evaluations/no-such-evaluation")).status_code == 404
