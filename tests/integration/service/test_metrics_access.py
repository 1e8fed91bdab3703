"""Who may read ``/metrics``: anyone by default; with ``INF_METRICS_TOKEN``, only its holder."""

from __future__ import annotations

import httpx
import pytest
from pydantic import SecretStr

from app.settings import Settings
from tests.support.service import Service, serve

TOKEN = "metrics-scrape-token"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"metrics_token": SecretStr(TOKEN)})


async def scrape(service: Service, authorization: str | None) -> httpx.Response:
    headers = {} if authorization is None else {"Authorization": authorization}
    async with httpx.AsyncClient(base_url=service.url, headers=headers, timeout=30) as client:
        return await client.get("/metrics")


async def test_the_token_opens_metrics(service: Service) -> None:
    response = await scrape(service, f"Bearer {TOKEN}")

    assert response.status_code == 200
    assert "inf_jobs" in response.text


@pytest.mark.parametrize(
    "authorization", [None, "Bearer wrong-token", f"Basic {TOKEN}", f"Bearer {TOKEN}x"]
)
async def test_without_the_token_metrics_answer_401(
    service: Service, authorization: str | None
) -> None:
    response = await scrape(service, authorization)

    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["type"] == "urn:inf-engine:problem:unauthorized"
    assert "inf_" not in response.text


async def test_a_tenant_api_key_does_not_open_metrics(service: Service) -> None:
    response = await service.client.get("/metrics")  # carries tenant a's API key

    assert response.status_code == 401


async def test_metrics_stay_open_without_a_token(settings: Settings) -> None:
    async with serve(settings.model_copy(update={"metrics_token": None})) as open_service:
        response = await scrape(open_service, None)

    assert response.status_code == 200
    assert "inf_jobs" in response.text
