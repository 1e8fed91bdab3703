"""The graphs and endpoints pages in a real browser: the list, a graph's DAG with its
versions, parameter diffs and active version; each alias's live limiter state, no secret."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import Page, expect

from tests.support.browser import Watch, axe, landmarks, screenshot_for_docs
from tests.support.graphs import ECHO_GRAPH
from tests.support.service import Service

pytestmark = pytest.mark.slow


def tuned(prompt: str) -> dict[str, Any]:
    """ECHO_GRAPH with its system prompt as a parameter of value ``prompt``."""
    node = {**ECHO_GRAPH["nodes"][0], "system": "{style}"}
    parameters = {"style": {"value": prompt}}
    return {**ECHO_GRAPH, "parameters": parameters, "nodes": [node]}


async def test_a_graph_shows_its_dag_versions_diffs_and_active_version(
    ui_service: Service, watched: tuple[Page, Watch]
) -> None:
    page, watch = watched
    for prompt in ("Echo.", "Echo, loudly."):
        answer = await ui_service.client.post("/v1/graphs", json=tuned(prompt))
        assert answer.status_code in (200, 201), answer.text
    promoted = await ui_service.client.post("/v1/graphs/echo/promote", json={"version": 1})
    assert promoted.status_code == 200, promoted.text

    await page.goto("/ui/graphs")
    await page.get_by_role("link", name="echo", exact=True).click()
    await expect(page.locator("h1")).to_contain_text("Graph echo")
    await expect(page.locator("svg.graph g.node")).to_have_count(1)
    second = page.locator('tr[data-version="2"]')
    await expect(second).to_contain_text("Echo, loudly.")
    await expect(second.locator("del")).to_have_text("Echo.")
    await expect(page.locator('tr[data-version="1"]')).to_contain_text("active")
    await expect(second).not_to_contain_text("active")
    for path in ("/ui/graphs", page.url):
        await page.goto(path)
        assert await landmarks(page) == {"banner": 1, "navigation": 1, "main": 1}
        assert await axe(page) == [], path
    await screenshot_for_docs(page, "graph")
    watch.assert_clean()


async def test_the_endpoints_page_shows_live_limits_and_no_secret(
    ui_service: Service, watched: tuple[Page, Watch]
) -> None:
    page, watch = watched
    await ui_service.client.post("/v1/graphs", json=ECHO_GRAPH)
    inputs = [{"text": f"t{i}"} for i in range(20)]
    await ui_service.client.post("/v1/jobs", json={"graph_id": "echo", "inputs": inputs})
    await page.goto("/ui/endpoints")
    row = page.locator('tr[data-alias="fast"]')
    await expect(row.locator('[data-field="in-flight"]')).to_contain_text("/ 16")
    # The table refreshes itself: the calls the job makes show up without a reload.
    await expect(row.locator("td").nth(5)).not_to_have_text("0", timeout=20_000)
    html = await page.content()
    assert "api_key" not in html
    assert "Bearer" not in html
    assert await axe(page) == []
    await screenshot_for_docs(page, "endpoints")
    watch.assert_clean()
