"""An item's page in a real browser shows the rendered prompt of each of its llm nodes."""

from __future__ import annotations

import pytest
from playwright.async_api import Page, expect

from tests.support.browser import Watch, axe, landmarks, screenshot_for_docs
from tests.support.graphs import TWO_CALLS_GRAPH
from tests.support.polling import until
from tests.support.service import Service

pytestmark = pytest.mark.slow


async def test_every_llm_node_shows_its_rendered_prompt(
    ui_service: Service, watched: tuple[Page, Watch]
) -> None:
    page, watch = watched
    client = ui_service.client
    assert (await client.post("/v1/graphs", json=TWO_CALLS_GRAPH)).status_code in (200, 201)
    inputs = [{"text": "owls at dusk"}, {"text": "bats at dawn"}]
    started = await client.post("/v1/jobs", json={"graph_id": "two-calls", "inputs": inputs})
    job_id = started.json()["id"]

    async def completed() -> bool:
        return (await client.get(f"/v1/jobs/{job_id}")).json()["status"] == "completed"

    await until(completed, timeout_s=30)
    await page.goto(f"/ui/jobs/{job_id}/items/1")
    draft = page.locator('[data-prompt="draft"]')
    polish = page.locator('[data-prompt="polish"]')
    await expect(draft.locator('li[data-role="system"]')).to_contain_text("Answer in one line.")
    await expect(draft.locator('li[data-role="user"]')).to_contain_text("Draft: bats at dawn")
    await expect(polish.locator('li[data-role="user"]').first).to_contain_text(
        "The topic was bats at dawn."
    )
    await expect(polish.locator('li[data-role="user"]').last).to_contain_text("Improve: reply")
    assert await page.get_by_text("kept for failed nodes only").count() == 0
    assert await landmarks(page) == {"banner": 1, "navigation": 1, "main": 1}
    assert await axe(page) == []
    await screenshot_for_docs(page, "item")
    watch.assert_clean()
