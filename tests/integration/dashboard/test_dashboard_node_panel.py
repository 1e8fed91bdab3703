"""A click on a node of a job's graph shows its duration percentiles and its failures."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import Page, expect

from tests.integration.dashboard.test_dashboard_jobs import submit, until_status
from tests.support.browser import Watch
from tests.support.service import Service

pytestmark = pytest.mark.slow

PARSE_GRAPH: dict[str, Any] = {
    "name": "parsing",
    "inputs": {"x": {"type": "string"}},
    "nodes": [{"id": "parsed", "op": "parse_json", "source": "x"}],
    "outputs": {"parsed": "parsed"},
}


async def test_a_click_on_a_node_shows_its_percentiles_and_failures(
    ui_service: Service, watched: tuple[Page, Watch]
) -> None:
    page, watch = watched
    inputs = [{"x": f'"v{i}"'} for i in range(9)]
    inputs[3] = {"x": "not json"}
    job_id = await submit(ui_service, PARSE_GRAPH, inputs)
    await until_status(ui_service, job_id, "completed")

    await page.goto(f"/ui/jobs/{job_id}")
    await expect(page.locator("#node-panel")).to_be_empty()
    await page.locator('svg.graph g.node[data-node="parsed"]').click()

    panel = page.locator('#node-panel .node-panel[data-node="parsed"]')
    await expect(panel).to_be_visible()
    for p in (50, 90, 99):
        await expect(panel.locator(f'[data-percentile="{p}"]')).to_contain_text(" s")
    await expect(panel).to_contain_text("over 9 timed results")
    await expect(panel.locator('[data-field="node-failures"]')).to_have_text("1")
    link = panel.get_by_role("link", name="Item 3", exact=True)
    await link.click()
    await expect(page.locator("h1")).to_contain_text("Item 3")
    watch.assert_clean()
