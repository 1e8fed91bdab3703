"""The jobs pages in a real browser: live progress without a reload, items and their node
records, cancel from the page (and refused without the CSRF token), the graph picture."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from playwright.async_api import Page, expect

from tests.support.browser import Watch, axe, landmarks, screenshot_for_docs
from tests.support.fake_llm import FakeLLM
from tests.support.graphs import ECHO_GRAPH
from tests.support.service import Service

pytestmark = pytest.mark.slow

BRANCH_GRAPH: dict[str, Any] = {
    "name": "branchy",
    "inputs": {"flag": {"type": "boolean"}, "text": {"type": "string"}},
    "nodes": [
        {"id": "echo", "op": "template", "text": "{text}"},
        {
            "id": "shout",
            "op": "template",
            "text": "{echo}!",
            "when": {"ref": "flag", "equals": True},
        },
    ],
    "outputs": {"echo": "echo"},
}


async def submit(service: Service, graph: dict[str, Any], inputs: list[Any]) -> str:
    assert (await service.client.post("/v1/graphs", json=graph)).status_code in (200, 201)
    answer = await service.client.post(
        "/v1/jobs", json={"graph_id": graph["name"], "inputs": inputs}
    )
    assert answer.status_code == 202, answer.text
    return str(answer.json()["id"])


async def job_status(service: Service, job_id: str) -> dict[str, Any]:
    return dict((await service.client.get(f"/v1/jobs/{job_id}")).json())


async def until_status(service: Service, job_id: str, wanted: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while (await job_status(service, job_id))["status"] != wanted:
        assert time.monotonic() < deadline, f"job {job_id} never became {wanted}"
        await asyncio.sleep(0.1)


async def watch_progress(page: Page, selector: str, total: int, timeout_s: float = 90) -> list[int]:
    """Every distinct value the progress bar showed until it reached ``total``."""
    seen: list[int] = []
    deadline = time.monotonic() + timeout_s
    while not seen or seen[-1] < total:
        assert time.monotonic() < deadline, f"progress stopped at {seen}"
        value = await page.evaluate(
            "s => { const e = document.querySelector(s); return e ? Number(e.value) : -1 }",
            selector,
        )
        if value >= 0 and (not seen or value != seen[-1]):
            seen.append(value)
        await asyncio.sleep(0.05)
    return seen


async def mark_document(page: Page) -> None:
    await page.evaluate("() => { window.__notReloaded = true }")


async def still_same_document(page: Page) -> bool:
    return bool(await page.evaluate("() => window.__notReloaded === true"))


async def test_progress_advances_live_on_the_jobs_and_job_pages(
    ui_service: Service, watched: tuple[Page, Watch], fake_llm: FakeLLM
) -> None:
    page, watch = watched
    # NOTE: 16 slots of 100 ms: 160 items a second, so that the list (refreshed every second)
    # shows several values before 600 and the job page has seconds of progress left to stream.
    fake_llm.configure(latency_ms=100)
    await page.goto("/ui/jobs")
    await mark_document(page)
    job_id = await submit(ui_service, ECHO_GRAPH, [{"text": f"t{i}"} for i in range(2_000)])

    row = page.locator(f'tr[data-job="{job_id}"]')
    await expect(row).to_be_visible(timeout=20_000)  # the list refreshes itself
    on_list = await watch_progress(page, f'tr[data-job="{job_id}"] progress', 600)
    assert await still_same_document(page)

    await row.get_by_role("link", name=job_id).click()
    await expect(page.locator("h1")).to_contain_text(job_id)
    await mark_document(page)
    on_page = await watch_progress(page, "#job-progress", 2_000)
    await expect(page.locator('[data-field="status"]')).to_have_text("completed")
    await expect(page.locator('[data-count="succeeded"]')).to_have_text("2000")
    answer = page.locator('svg.graph g.node[data-node="answer"]')
    await expect(answer).to_have_attribute("data-succeeded", "2000")  # the graph follows too

    assert await still_same_document(page)  # the stream moved the bar, not a reload
    assert len([v for v in on_list if v > 0]) >= 2, on_list
    assert len([v for v in on_page if 0 < v < 2_000]) >= 2, on_page
    assert await page.locator("#job-progress").get_attribute("max") == "2000"
    assert "items/s" in (await page.locator('[data-field="throughput"]').inner_text())
    await expect(page.get_by_role("button", name="Cancel job")).to_have_count(0)
    await screenshot_for_docs(page, "job")
    watch.assert_clean()


async def test_an_item_shows_its_node_records(
    ui_service: Service, watched: tuple[Page, Watch]
) -> None:
    page, watch = watched
    job_id = await submit(ui_service, ECHO_GRAPH, [{"text": f"t{i}"} for i in range(3)])
    await until_status(ui_service, job_id, "completed")

    await page.goto(f"/ui/jobs/{job_id}")
    await page.get_by_role("link", name="Item 1", exact=True).click()
    await expect(page.locator("h1")).to_contain_text("Item 1")
    record = page.locator('table.nodes tr[data-node="answer"]')
    await expect(record).to_contain_text("succeeded")
    await expect(record).to_contain_text("fast")
    await expect(page.locator("pre.json").first).to_contain_text('"t1"')
    watch.assert_clean()


async def test_cancel_from_the_page_is_what_the_api_reports(
    ui_service: Service, watched: tuple[Page, Watch], fake_llm: FakeLLM
) -> None:
    page, watch = watched
    fake_llm.configure(latency_ms=300)
    job_id = await submit(ui_service, ECHO_GRAPH, [{"text": f"t{i}"} for i in range(500)])
    await page.goto(f"/ui/jobs/{job_id}")
    await page.get_by_role("button", name="Cancel job").click()

    await until_status(ui_service, job_id, "cancelled", timeout_s=30)
    await expect(page.locator('[data-field="status"]')).to_have_text("cancelled", timeout=20_000)
    assert (await job_status(ui_service, job_id))["counts"]["cancelled"] > 0
    watch.assert_clean()


async def test_a_cancel_without_the_csrf_token_is_refused(
    ui_service: Service, watched: tuple[Page, Watch], fake_llm: FakeLLM
) -> None:
    page, _ = watched
    fake_llm.configure(latency_ms=300)
    job_id = await submit(ui_service, ECHO_GRAPH, [{"text": f"t{i}"} for i in range(200)])
    await page.goto(f"/ui/jobs/{job_id}")  # the browser holds a session cookie now

    bare = await page.request.post(f"/ui/jobs/{job_id}/cancel", form={})
    forged = await page.request.post(f"/ui/jobs/{job_id}/cancel", form={"csrf_token": "x" * 64})

    assert (bare.status, forged.status) == (403, 403)
    assert (await job_status(ui_service, job_id))["status"] != "cancelled"


async def test_the_graph_has_one_element_per_node_with_its_counts(
    ui_service: Service, watched: tuple[Page, Watch]
) -> None:
    page, watch = watched
    inputs = [{"flag": False, "text": f"t{i}"} for i in range(7)]
    job_id = await submit(ui_service, BRANCH_GRAPH, inputs)
    await until_status(ui_service, job_id, "completed")

    await page.goto(f"/ui/jobs/{job_id}")
    nodes = page.locator("svg.graph g.node")
    await expect(nodes).to_have_count(2)
    echo, shout = (
        page.locator('g.node[data-node="echo"]'),
        page.locator('g.node[data-node="shout"]'),
    )
    assert await echo.get_attribute("data-succeeded") == "7"
    assert await echo.get_attribute("data-state") == "succeeded"
    assert await shout.get_attribute("data-skipped") == "7"
    assert await shout.get_attribute("data-succeeded") == "0"
    assert await shout.get_attribute("data-state") == "skipped"
    assert "state-skipped" in (await shout.get_attribute("class") or "")
    watch.assert_clean()


async def test_every_job_page_has_a_title_landmarks_and_labels(
    ui_service: Service, watched: tuple[Page, Watch]
) -> None:
    page, watch = watched
    job_id = await submit(ui_service, ECHO_GRAPH, [{"text": "a"}, {"text": "b"}])
    await until_status(ui_service, job_id, "completed")
    paths = ["/ui/jobs", f"/ui/jobs/{job_id}", f"/ui/jobs/{job_id}/items/0", "/ui/jobs/nope"]
    watch.allow_error_page(f"{ui_service.url}/ui/jobs/nope")
    for path in paths:
        await page.goto(path)
        assert (await page.title()).endswith("· inf-engine"), path
        assert await landmarks(page) == {"banner": 1, "navigation": 1, "main": 1}, path
        assert await axe(page) == [], path
    await page.goto("/ui/jobs")
    await screenshot_for_docs(page, "jobs")
    watch.assert_clean()
