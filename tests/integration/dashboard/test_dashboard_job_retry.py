""" "Retry failed items" on a job's page: a new job of only the failed rows, shown at once;
refused without the session's CSRF token; not offered when nothing failed."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import Page, expect

from tests.integration.dashboard.test_dashboard_jobs import submit, until_status
from tests.support.browser import Watch, axe
from tests.support.fake_llm import FakeLLM
from tests.support.graphs import ECHO_GRAPH
from tests.support.service import Service

pytestmark = pytest.mark.slow

ROWS = [
    {"text": "fine 0"},
    {"text": "poison 1", "custom_id": "one"},
    {"text": "fine 2"},
    {"text": "poison 3", "metadata": {"k": "v"}},
    {"text": "fine 4"},
]


async def failed_job(service: Service, fake_llm: FakeLLM) -> str:
    """An ended job whose two ``poison`` rows failed (refused once by the server), the server
    then answering every row and its log emptied."""
    fake_llm.configure(rules=[{"match": "poison", "status": 400, "times": 2}])
    job_id = await submit(service, ECHO_GRAPH, ROWS)
    await until_status(service, job_id, "completed")
    fake_llm.configure()
    fake_llm.reset()
    return job_id


async def jobs_of(service: Service) -> list[dict[str, Any]]:
    return list((await service.client.get("/v1/jobs")).json()["items"])


async def test_the_button_opens_a_new_job_of_only_the_failed_rows(
    ui_service: Service, watched: tuple[Page, Watch], fake_llm: FakeLLM
) -> None:
    page, watch = watched
    original = await failed_job(ui_service, fake_llm)
    await page.goto(f"/ui/jobs/{original}")

    await page.get_by_role("button", name="Retry failed items").click()

    await expect(page).not_to_have_url(f"{ui_service.url}/ui/jobs/{original}")
    retried = page.url.rsplit("/", 1)[-1]
    await expect(page.locator("h1")).to_contain_text(retried)
    await expect(page.locator('[data-field="retry-of"]')).to_have_text(original)
    await expect(page.locator('[data-field="status"]')).to_have_text("completed", timeout=30_000)
    await expect(page.locator('[data-field="total"]')).to_have_text("2")
    await expect(page.locator('[data-count="succeeded"]')).to_have_text("2")
    assert sorted(str(entry["prompt"]) for entry in fake_llm.log()) == ["poison 1", "poison 3"]
    results = (await ui_service.client.get(f"/v1/jobs/{retried}/results")).json()["items"]
    assert [(r["custom_id"], r["metadata"]) for r in results] == [("one", None), (None, {"k": "v"})]
    await expect(page.get_by_role("button", name="Retry failed items")).to_have_count(0)
    assert await axe(page) == []
    watch.assert_clean()


async def test_a_retry_without_the_csrf_token_is_refused(
    ui_service: Service, watched: tuple[Page, Watch], fake_llm: FakeLLM
) -> None:
    page, _ = watched
    original = await failed_job(ui_service, fake_llm)
    await page.goto(f"/ui/jobs/{original}")  # the browser holds a session cookie now

    bare = await page.request.post(f"/ui/jobs/{original}/retry", form={})
    forged = await page.request.post(f"/ui/jobs/{original}/retry", form={"csrf_token": "x" * 64})

    assert (bare.status, forged.status) == (403, 403)
    assert [job["id"] for job in await jobs_of(ui_service)] == [original]
    assert fake_llm.log() == []


async def test_a_job_with_nothing_failed_offers_no_retry(
    ui_service: Service, watched: tuple[Page, Watch]
) -> None:
    page, watch = watched
    job_id = await submit(ui_service, ECHO_GRAPH, [{"text": "fine"}])
    await until_status(ui_service, job_id, "completed")

    await page.goto(f"/ui/jobs/{job_id}")

    await expect(page.locator('[data-field="status"]')).to_have_text("completed")
    await expect(page.get_by_role("button", name="Retry failed items")).to_have_count(0)
    watch.assert_clean()
