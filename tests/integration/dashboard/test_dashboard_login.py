"""With API keys on: a login form takes a key and keeps a session cookie (HttpOnly,
SameSite=Strict); pages are scoped to the key's tenant; a revoked key ends its session."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, Page, expect

from app.db.repositories import tenants
from app.settings import Settings
from tests.integration.dashboard.conftest import save_if_failed
from tests.support.browser import Watch, axe, landmarks, screenshot_for_docs, watched_page
from tests.support.graphs import ECHO_GRAPH
from tests.support.service import Service, serve

pytestmark = pytest.mark.slow


@pytest.fixture
async def keys_service(ui_settings: Settings) -> AsyncIterator[Service]:
    async with serve(ui_settings.model_copy(update={"auth_mode": "keys"})) as running:
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


async def new_key(service: Service, tenant_name: str) -> str:
    async with service.runtime.sessions() as session:
        tenant = await tenants.get_or_create_tenant(session, tenant_name)
        _, secret = await tenants.create_api_key(session, tenant.id, "ui")
        await session.commit()
    return secret


async def job_of(service: Service, key: str) -> str:
    headers = {"Authorization": f"Bearer {key}"}
    await service.client.post("/v1/graphs", json=ECHO_GRAPH, headers=headers)
    body = {"graph_id": "echo", "inputs": [{"text": "x"}]}
    answer = await service.client.post("/v1/jobs", json=body, headers=headers)
    return str(answer.json()["id"])


async def log_in(page: Page, key: str) -> None:
    await page.get_by_label("API key").fill(key)
    await page.get_by_role("button", name="Sign in").click()


async def test_log_in_with_a_key_and_see_only_the_tenants_jobs(
    keys_service: Service, keys_page: tuple[Page, Watch]
) -> None:
    page, watch = keys_page
    own_key, other_key = await new_key(keys_service, "a"), await new_key(keys_service, "b")
    own, other = await job_of(keys_service, own_key), await job_of(keys_service, other_key)

    await page.goto(f"/ui/jobs/{own}")
    await expect(page).to_have_url(f"{keys_service.url}/ui/login?next=/ui/jobs/{own}")
    assert await landmarks(page) == {"banner": 1, "navigation": 1, "main": 1}
    assert await axe(page) == []
    await screenshot_for_docs(page, "login")
    await log_in(page, own_key)
    await expect(page.locator("h1")).to_contain_text(own)

    cookie = next(c for c in await page.context.cookies() if c["name"] == "inf_ui_session")
    assert (cookie["httpOnly"], cookie["sameSite"], cookie["path"]) == (True, "Strict", "/ui")
    assert own_key not in cookie["value"]

    watch.allow_error_page(f"{keys_service.url}/ui/jobs/{other}")
    answer = await page.goto(f"/ui/jobs/{other}")
    assert answer is not None
    assert answer.status == 404
    await expect(page.locator("h1")).to_have_text("Not found")
    assert (await page.title()).startswith("Not found")
    await page.goto("/ui/jobs")
    await expect(page.locator(f'tr[data-job="{own}"]')).to_have_count(1)
    await expect(page.locator(f'tr[data-job="{other}"]')).to_have_count(0)
    watch.assert_clean()


async def test_a_wrong_key_is_refused_and_a_revoked_key_ends_the_session(
    keys_service: Service, keys_page: tuple[Page, Watch]
) -> None:
    page, _ = keys_page
    key = await new_key(keys_service, "a")
    await page.goto("/ui/login")
    await log_in(page, "ie_not-a-key")
    await expect(page.get_by_role("alert")).to_contain_text("unknown or revoked")

    await log_in(page, key)
    await expect(page.locator("h1")).to_have_text("Jobs")
    async with keys_service.runtime.sessions() as session:
        for found in await tenants.find_api_keys(session, key[:10]):
            found.revoked_at = found.created_at
        await session.commit()
    await page.goto("/ui/jobs")
    await expect(page).to_have_url(f"{keys_service.url}/ui/login?next=/ui/jobs")


async def test_sign_out_needs_the_csrf_token(
    keys_service: Service, keys_page: tuple[Page, Watch]
) -> None:
    page, _ = keys_page
    await page.goto("/ui/login")
    await log_in(page, await new_key(keys_service, "a"))
    refused = await page.request.post("/ui/logout", form={})
    assert refused.status == 403
    await page.get_by_role("button", name="Sign out").click()
    await expect(page).to_have_url(f"{keys_service.url}/ui/login")
    await page.goto("/ui/jobs")
    await expect(page).to_have_url(f"{keys_service.url}/ui/login?next=/ui/jobs")


async def test_a_login_post_without_the_forms_token_is_refused(
    browser: Browser, keys_service: Service, keys_page: tuple[Page, Watch]
) -> None:
    page, watch = keys_page
    key = await new_key(keys_service, "a")
    await page.goto("/ui/login")
    login = next(c for c in await page.context.cookies() if c["name"] == "inf_ui_login")
    assert (login["httpOnly"], login["sameSite"], login["path"]) == (True, "Strict", "/ui/login")
    token = await page.locator('input[name="csrf_token"]').get_attribute("value")
    assert token

    bare = await page.request.post("/ui/login", form={"api_key": key})
    forged = await page.request.post("/ui/login", form={"api_key": key, "csrf_token": "x" * 64})
    elsewhere, _ = await watched_page(browser, keys_service.url)  # no login cookie there
    copied = await elsewhere.request.post("/ui/login", form={"api_key": key, "csrf_token": token})
    await elsewhere.context.close()

    assert (bare.status, forged.status, copied.status) == (403, 403, 403)
    assert "another site" in await bare.text()
    assert all(c["name"] != "inf_ui_session" for c in await page.context.cookies())
    await log_in(page, key)  # the form itself still signs in
    await expect(page.locator("h1")).to_have_text("Jobs")
    assert all(c["name"] != "inf_ui_login" for c in await page.context.cookies())
    watch.assert_clean()
