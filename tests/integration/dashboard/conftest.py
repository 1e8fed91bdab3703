"""Browser tests of the dashboard: a real service on loopback, a real headless Chromium.

Each test's pages are saved as screenshots under ``test-results/dashboard/`` when it fails.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright

from app.settings import Settings
from tests.support.browser import FAILURES_DIR, Watch, require_chromium, watched_page
from tests.support.fake_llm import FakeLLM
from tests.support.service import Service, endpoints_file, serve


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def ui_settings(db_url: str, fake_llm: FakeLLM, tmp_path: Path) -> Settings:
    """Open mode (loopback, no keys), the runner on the service's loop, the fake LLM server."""
    return Settings(
        database_url=db_url,
        auto_migrate=False,
        auth_mode="open",
        endpoints_file=endpoints_file(tmp_path, fake_llm.base_url, max_concurrent=16),
        runner_mode="inline",
        flush_interval_s=0.05,
        progress_interval_s=0.2,
        events_poll_s=0.05,
        poll_s=0.1,
        max_graph_nodes=100,
    )


@pytest.fixture
async def ui_service(ui_settings: Settings) -> AsyncIterator[Service]:
    async with serve(ui_settings) as running:
        yield running


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    chromium = require_chromium()
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(chromium), headless=True)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def watched(
    request: pytest.FixtureRequest, browser: Browser, ui_service: Service
) -> AsyncIterator[tuple[Page, Watch]]:
    """A watched page on the service; a screenshot of it is saved if the test fails."""
    page, watch = await watched_page(browser, ui_service.url)
    try:
        yield page, watch
    finally:
        await save_if_failed(request, page)


async def save_if_failed(request: pytest.FixtureRequest, page: Page) -> None:
    """Screenshot ``page`` into ``test-results/dashboard/`` when the test's call failed."""
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed and not page.is_closed():
        FAILURES_DIR.mkdir(parents=True, exist_ok=True)
        name = request.node.name.replace("/", "_").replace("[", "-").rstrip("]")
        await page.screenshot(path=FAILURES_DIR / f"{name}.png", full_page=True)
