"""The evaluation pages in a real browser, with API keys on: the list from the navigation,
one paired evaluation's result (as the API reports it), its spend and its scored items a
page at a time, the link from the optimizations page, and another tenant's as a 404 page."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from playwright.async_api import Browser, Page, expect

from app.settings import Settings
from tests.integration.dashboard.conftest import save_if_failed
from tests.integration.dashboard.test_dashboard_login import log_in, new_key
from tests.support.browser import Watch, axe, landmarks, screenshot_for_docs, watched_page
from tests.support.fake_llm import FakeLLM
from tests.support.polling import until
from tests.support.service import Service, serve
from tests.support.sim_tasks import dataset_bodies, fake_server_endpoints, graph_json

pytestmark = pytest.mark.slow
NDJSON = {"content-type": "application/x-ndjson"}
ANSWER = {"verifiers": [{"op": "answer_equals"}]}


@pytest.fixture
async def keys_service(
    ui_settings: Settings, fake_llm: FakeLLM, tmp_path: Path
) -> AsyncIterator[Service]:
    path = tmp_path / "sim-endpoints.yaml"
    path.write_text(yaml.safe_dump(fake_server_endpoints(fake_llm.base_url)))
    update = {"endpoints_file": path, "auth_mode": "keys", "max_dataset_items": 300}
    async with serve(ui_settings.model_copy(update=update)) as running:
        yield running


@pytest.fixture
async def keys_page(
    request: pytest.FixtureRequest, browser: Browser, keys_service: Service
) -> AsyncIterator[tuple[Page, Watch]]:
    page, watch = await watched_page(browser, keys_service.url)
    try:
        yield page, watch
    finally:
        await save_if_failed(request, page)


async def evaluation_of(client: httpx.AsyncClient, key: str, examples: int) -> dict[str, Any]:
    """A paired evaluation of task A's two versions on ``examples`` examples, ended."""
    headers = {"Authorization": f"Bearer {key}"}
    graph = graph_json("task-a")
    for _ in range(2):
        assert (await client.post("/v1/graphs", json=graph, headers=headers)).status_code < 300
        graph["parameters"]["instructions"]["value"] += " Count carefully."
    body = dataset_bodies("task-a", examples)["train"]
    pushed = await client.post(
        "/v1/datasets", params={"name": "a"}, content=body, headers={**headers, **NDJSON}
    )
    assert pushed.status_code < 300, pushed.text
    request = {"graph_id": graph["name"], "dataset": pushed.json()["id"], "loss": ANSWER}
    started = await client.post(
        "/v1/evaluations", json={**request, "versions": [1, 2]}, headers=headers
    )
    assert started.status_code == 202, started.text
    url = f"/v1/evaluations/{started.json()['id']}"

    async def ended() -> bool:
        return (await client.get(url, headers=headers)).json()["status"] == "completed"

    await until(ended, timeout_s=60)
    return dict((await client.get(url, headers=headers)).json())


async def test_an_evaluation_page_shows_its_result_spend_and_items(
    keys_service: Service, keys_page: tuple[Page, Watch]
) -> None:
    page, watch = keys_page
    own_key, other_key = await new_key(keys_service, "a"), await new_key(keys_service, "b")
    own = await evaluation_of(keys_service.client, own_key, 30)
    other = await evaluation_of(keys_service.client, other_key, 2)

    await page.goto("/ui/evaluations")
    await log_in(page, own_key)
    await page.get_by_role("navigation").get_by_role("link", name="Evaluations").click()
    await expect(page.locator("h1")).to_have_text("Evaluations")
    row = page.locator(f'tr[data-evaluation="{own["id"]}"]')
    means = [f"v{v['version']}: {v['mean']:.3f}" for v in own["result"]["versions"]]
    await expect(row.locator('[data-field="scores"]')).to_have_text(", ".join(means))
    await expect(page.locator(f'tr[data-evaluation="{other["id"]}"]')).to_have_count(0)
    assert await landmarks(page) == {"banner": 1, "navigation": 1, "main": 1}
    assert await axe(page) == []
    await screenshot_for_docs(page, "evaluations")

    await row.get_by_role("link", name=own["id"]).click()
    await expect(page.locator("h1")).to_contain_text(own["id"])
    await expect(page.locator('[data-field="status"]')).to_have_text("completed")
    await expect(page.locator('[data-field="dataset"]')).to_have_text(own["dataset"])
    for version in own["result"]["versions"]:
        mean = page.locator(f'tr[data-version="{version["version"]}"] [data-field="mean"]')
        await expect(mean).to_have_text(f"{version['mean']:.3f}")
    await expect(page.locator('[data-field="paired"]')).to_contain_text(
        f"{own['result']['paired']['delta']:+.3f}"
    )
    calls = own["usage"]["roles"]["task"]["calls"]
    await expect(page.locator('tr[data-role="task"] [data-field="calls"]')).to_have_text(str(calls))
    await expect(page.locator("table.items tbody tr")).to_have_count(50)
    assert await landmarks(page) == {"banner": 1, "navigation": 1, "main": 1}
    assert await axe(page) == []
    await screenshot_for_docs(page, "evaluation")
    await page.get_by_role("link", name="More items").click()
    await expect(page.locator("table.items tbody tr")).to_have_count(10)  # 60 items in all
    last = page.locator('tr[data-item="59"] [data-field="score"]')
    await expect(last).to_have_text(re.compile(r"^\d\.\d{3}$"))

    await page.goto("/ui/optimizations")
    await page.get_by_role("link", name=own["id"]).click()
    await expect(page.locator("h1")).to_contain_text(own["id"])

    watch.allow_error_page(f"{keys_service.url}/ui/evaluations/{other['id']}")
    answer = await page.goto(f"/ui/evaluations/{other['id']}")
    assert answer is not None
    assert answer.status == 404
    await expect(page.locator("h1")).to_have_text("Not found")
    watch.assert_clean()
