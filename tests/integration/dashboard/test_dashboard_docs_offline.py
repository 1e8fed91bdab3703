"""``/docs`` and ``/redoc`` render in a browser that can reach nothing but the service, under
a Content-Security-Policy that runs no inline script, with no console error and no violation
of that policy."""

from __future__ import annotations

import pytest
from playwright.async_api import Page, expect

from tests.support.browser import Watch, screenshot_for_docs

pytestmark = pytest.mark.slow

# Run by the test harness before the page's own scripts: every policy violation is kept.
RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__violations.push(`${e.violatedDirective} ${e.blockedURI}`);
});
"""


def directives(headers: dict[str, str]) -> dict[str, str]:
    """An answer's Content-Security-Policy, by directive."""
    policy = headers["content-security-policy"]
    parts = (d.strip().split(" ", 1) for d in policy.split(";") if d.strip())
    return {part[0]: part[1] if len(part) > 1 else "" for part in parts}


async def open_recorded(page: Page, path: str) -> dict[str, str]:
    """Open ``path`` with its policy violations recorded; its policy."""
    await page.add_init_script(RECORD_VIOLATIONS)
    answer = await page.goto(path)
    assert answer is not None
    assert answer.ok
    return directives(answer.headers)


async def violations(page: Page) -> list[str]:
    return list(await page.evaluate("() => window.__violations"))


async def test_swagger_ui_renders_from_the_package(watched: tuple[Page, Watch]) -> None:
    page, watch = watched
    policy = await open_recorded(page, "/docs")
    await expect(page.locator(".swagger-ui .info .title")).to_contain_text("inf-engine")
    await expect(page.locator(".opblock-tag").first).to_be_visible()
    await expect(page.locator(".opblock-summary-path", has_text="/v1/jobs").first).to_be_visible()
    await page.locator(".opblock-summary").first.click()  # an operation opens, scripts run
    await expect(page.locator(".opblock-body").first).to_be_visible()
    assert await page.title() == "inf-engine - Swagger UI"
    assert (policy["script-src"], policy["default-src"]) == ("'self'", "'self'")
    assert await violations(page) == []
    await screenshot_for_docs(page, "docs")
    watch.assert_clean()


async def test_redoc_renders_from_the_package(watched: tuple[Page, Watch]) -> None:
    page, watch = watched
    policy = await open_recorded(page, "/redoc")
    await expect(page.locator("h1").first).to_contain_text("inf-engine", timeout=20_000)
    await expect(page.get_by_text("/v1/jobs/{job_id}/retry").first).to_be_attached()
    assert await page.title() == "inf-engine - ReDoc"
    assert (policy["script-src"], policy["default-src"]) == ("'self'", "'self'")
    assert await violations(page) == []
    watch.assert_clean()


async def test_the_docs_pages_name_no_other_host_and_run_no_inline_script(
    watched: tuple[Page, Watch],
) -> None:
    page, _ = watched
    for path in ("/docs", "/redoc"):
        response = await page.request.get(path)
        html = await response.text()
        assert response.ok
        assert "https://" not in html
        assert "http://" not in html
        assert "<script>" not in html, path
        assert "<style" not in html, path
        assert directives(response.headers)["script-src"] == "'self'", path
