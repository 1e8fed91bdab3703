"""A real headless Chromium (Debian's ``/usr/bin/chromium``) driven by Playwright for Python.

Every page a test opens is watched: console errors, uncaught page errors and any request to
another host than the service's are recorded (and the outside requests aborted), so a test can
assert that none happened. ``axe`` runs the vendored axe-core rules on the open page.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Browser, ConsoleMessage, Page, Request, Route

CHROMIUM = Path(os.environ.get("DASHBOARD_CHROMIUM", "/usr/bin/chromium"))
AXE_JS = Path(__file__).resolve().parent / "vendor" / "axe-core-4.14.1" / "axe.min.js"
REPO_ROOT = Path(__file__).resolve().parents[2]
FAILURES_DIR = REPO_ROOT / "test-results" / "dashboard"
SCREENSHOTS_DIR = REPO_ROOT / "docs" / "images"
LOCAL_SCHEMES = ("data", "blob", "about")


def require_chromium() -> Path:
    """The browser's path; the test is skipped (with the reason) when it is not installed."""
    if not CHROMIUM.exists():
        pytest.skip(f"browser tests need Chromium at {CHROMIUM} (apt-get install chromium)")
    return CHROMIUM


@dataclass
class Watch:
    """What the pages of one browser context did that a test must not see."""

    host: str
    console_errors: list[str] = field(default_factory=list)
    outside_requests: list[str] = field(default_factory=list)
    error_pages: set[str] = field(default_factory=set)

    def allow_error_page(self, url: str) -> None:
        """``url`` is a page meant to answer 4xx: Chromium's note that it did is no error."""
        self.error_pages.add(url)

    def on_console(self, message: ConsoleMessage) -> None:
        expected = message.location.get("url") in self.error_pages
        if message.type == "error" and not (expected and "Failed to load" in message.text):
            self.console_errors.append(f"{message.text} ({message.location})")

    def on_page_error(self, error: Exception) -> None:
        self.console_errors.append(f"uncaught: {error}")

    def is_outside(self, url: str) -> bool:
        parts = urlsplit(url)
        return parts.scheme not in LOCAL_SCHEMES and parts.netloc != self.host

    async def route(self, route: Route, request: Request) -> None:
        if self.is_outside(request.url):
            self.outside_requests.append(request.url)
            await route.abort()
        else:
            await route.continue_()

    def assert_clean(self) -> None:
        assert self.console_errors == []
        assert self.outside_requests == []


async def watched_page(browser: Browser, base_url: str) -> tuple[Page, Watch]:
    """A new page in a fresh context on ``base_url``, watched."""
    context = await browser.new_context(base_url=base_url, viewport={"width": 1280, "height": 900})
    watch = Watch(urlsplit(base_url).netloc)
    await context.route("**/*", watch.route)
    page = await context.new_page()
    page.on("console", watch.on_console)
    page.on("pageerror", watch.on_page_error)
    return page, watch


async def axe(page: Page) -> list[dict[str, Any]]:
    """The axe-core violations (WCAG 2 A and AA rules) of the page as it is now."""
    # Evaluated by the test harness, not a <script> tag: the pages' CSP allows no inline script.
    await page.evaluate(AXE_JS.read_text(encoding="utf-8"))
    options = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa"]}}
    script = f"async () => (await axe.run(document, {json.dumps(options)})).violations"
    found: list[dict[str, Any]] = await page.evaluate(script)
    return [{"id": v["id"], "nodes": [n["target"] for n in v["nodes"]]} for v in found]


async def landmarks(page: Page) -> dict[str, int]:
    """How many of each landmark the page has (banner, navigation, main)."""
    counts = {}
    for role in ("banner", "navigation", "main"):
        counts[role] = await page.get_by_role(role).count()  # type: ignore[arg-type]
    return counts


async def screenshot_for_docs(page: Page, name: str) -> None:
    """Save the page for docs/dashboard.md when ``DASHBOARD_SCREENSHOTS=1``."""
    if os.environ.get("DASHBOARD_SCREENSHOTS") == "1":
        SCREENSHOTS_DIR.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=SCREENSHOTS_DIR / f"dashboard-{name}.png", full_page=True)
