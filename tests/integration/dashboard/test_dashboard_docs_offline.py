"""``/docs`` and ``/redoc`` render in a browser that can reach nothing but the service."""

from __future__ import annotations

import pytest
from playwright.async_api import Page, expect

from tests.support.browser import Watch, screenshot_for_docs

pytestmark = pytest.mark.slow


async def test_swagger_ui_renders_from_the_package(watched: tuple[Page, Watch]) -> None:
    page, watch = watched
    await page.goto("/docs")
    await expect(page.locator(".swagger-ui .info .title")).to_contain_text("inf-engine")
    await expect(page.locator(".opblock-tag").first).to_be_visible()
    assert await page.title() == "inf-engine - Swagger UI"
    await screenshot_for_docs(page, "docs")
    watch.assert_clean()


async def test_redoc_renders_from_the_package(watched: tuple[Page, Watch]) -> None:
    page, watch = watched
    await page.goto("/redoc")
    await expect(page.locator("h1").first).to_contain_text("inf-engine", timeout=20_000)
    assert await page.title() == "inf-engine - ReDoc"
    watch.assert_clean()


async def test_the_docs_pages_name_no_other_host(watched: tuple[Page, Watch]) -> None:
    page, _ = watched
    for path in ("/docs", "/redoc"):
        response = await page.request.get(path)
        html = await response.text()
        assert response.ok
        assert "https://" not in html
        assert "http://" not in html
