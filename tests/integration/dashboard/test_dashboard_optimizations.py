"""The optimization pages in a real browser: a small run of Task A on the fake server's
simulated roles, its curve gaining points without a reload, its steps with their diffs, and
promote and rollback moving the graph's active version as the API reports."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import yaml
from playwright.async_api import Page, expect

from app.settings import Settings
from tests.support.browser import Watch, axe, landmarks, screenshot_for_docs
from tests.support.fake_llm import FakeLLM
from tests.support.service import Service
from tests.support.sim_tasks import dataset_bodies, fake_server_endpoints, graph_json, run_request

pytestmark = pytest.mark.slow
NDJSON = {"content-type": "application/x-ndjson"}


@pytest.fixture
def ui_settings(ui_settings: Settings, fake_llm: FakeLLM, tmp_path: Path) -> Settings:
    """The simulated task, critic and optimizer roles, each call slowed so the page sees the
    run while it runs."""
    fake_llm.configure(latency_ms=60)
    path = tmp_path / "sim-endpoints.yaml"
    path.write_text(yaml.safe_dump(fake_server_endpoints(fake_llm.base_url)))
    data = {**ui_settings.model_dump(), "endpoints_file": path, "max_dataset_items": 300}
    return Settings.model_validate(data)


async def small_task_a(client: httpx.AsyncClient) -> dict[str, str]:
    graph = graph_json("task-a")
    assert (await client.post("/v1/graphs", json=graph)).status_code in (200, 201)
    ids = {"graph_id": graph["name"]}
    for name, body in dataset_bodies("task-a", 10).items():
        pushed = await client.post(
            "/v1/datasets", params={"name": name}, content=body, headers=NDJSON
        )
        assert pushed.status_code in (200, 201), pushed.text
        ids[name] = str(pushed.json()["id"])
    return ids


async def active_version(client: httpx.AsyncClient, graph: str) -> int:
    found = (await client.get(f"/v1/graphs/{graph}")).json()
    return int(found.get("active_version") or found["version"])


async def test_a_run_page_is_live_and_promotes_and_rolls_back(
    ui_service: Service, watched: tuple[Page, Watch]
) -> None:
    page, watch = watched
    client = ui_service.client
    data = await small_task_a(client)
    body = run_request(data, seed=3, schedule={"epochs": 2, "batch_size": 5})
    started = await client.post("/v1/optimizations", json=body)
    assert started.status_code == 202, started.text
    run_id = started.json()["id"]

    await page.goto("/ui/optimizations")
    await page.get_by_role("link", name=run_id).click()
    await expect(page.locator("h1")).to_contain_text(run_id)
    assert await page.locator("#run-live[sse-connect]").count() == 1  # opened while it runs
    shown = await page.locator("svg.curve circle.point").count()
    # The curve gains points and the run ends, with no reload (the stream swaps the section).
    await expect(page.locator('[data-field="state"]')).to_have_text("succeeded", timeout=90_000)
    done = (await client.get(f"/v1/optimizations/{run_id}")).json()
    await expect(page.locator("svg.curve circle.point")).to_have_count(len(done["steps"]))
    assert len(done["steps"]) > shown
    assert page.url.endswith(f"/ui/optimizations/{run_id}")
    await expect(page.locator("table.steps tbody tr")).to_have_count(len(done["steps"]))
    await expect(page.locator('tr[data-role="task"] [data-field="calls"]')).not_to_have_text("0")
    diffs = [p["diff"] for s in done["steps"] for p in s["proposals"]]
    if diffs:
        await expect(page.locator("pre.diff").first).to_have_text(diffs[0])
    assert await landmarks(page) == {"banner": 1, "navigation": 1, "main": 1}
    assert await axe(page) == []
    await screenshot_for_docs(page, "optimization")

    before = await active_version(client, data["graph_id"])
    versions = (await client.get(f"/v1/graphs/{data['graph_id']}/versions")).json()["items"]
    target = max(v["version"] for v in versions)
    await page.fill("#promote-version", str(target))
    await page.get_by_role("button", name="Promote").click()
    await expect(page.locator("h1")).to_contain_text(run_id)
    assert target != before  # the run's accepted steps created versions
    assert await active_version(client, data["graph_id"]) == target
    await page.get_by_role("button", name="Roll back the last move").click()
    await expect(page.locator("h1")).to_contain_text(run_id)
    assert await active_version(client, data["graph_id"]) == before

    await page.goto("/ui/optimizations")
    await expect(page.locator(f'tr[data-run="{run_id}"]')).to_contain_text("succeeded")
    assert await axe(page) == []
    await screenshot_for_docs(page, "optimizations")
    watch.assert_clean()


async def test_a_promote_without_its_csrf_token_is_refused(
    ui_service: Service, watched: tuple[Page, Watch]
) -> None:
    page, _ = watched
    client = ui_service.client
    data = await small_task_a(client)
    started = await client.post("/v1/optimizations", json=run_request(data, seed=3))
    run_id = started.json()["id"]
    await page.goto(f"/ui/optimizations/{run_id}")  # a session cookie, but no token sent
    before = await active_version(client, data["graph_id"])
    for action in ("promote", "rollback"):
        answer = await page.request.post(
            f"/ui/optimizations/{run_id}/{action}", form={"version": "1"}
        )
        assert answer.status == 403, action
    assert await active_version(client, data["graph_id"]) == before
