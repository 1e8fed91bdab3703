"""``GET /v1/endpoints`` shows every tenant the aliases, but never a credential."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.settings import Settings
from tests.support.fake_llm import FakeLLM
from tests.support.service import Service, endpoints_file

SECRET_URL = "https://user:s3cret@llm.example.com:8443/v1?api-key=k3y-t0k&x=1"


@pytest.fixture
def settings(settings: Settings, tmp_path: Path, fake_llm: FakeLLM) -> Settings:
    """Aliases whose base URL carries a password and a query token, and a key variable."""
    folder = tmp_path / "secret"
    folder.mkdir()
    endpoints = endpoints_file(folder, SECRET_URL, api_key_env="PROVIDER_KEY")
    return settings.model_copy(update={"endpoints_file": endpoints})


async def test_base_url_credentials_are_redacted(service: Service) -> None:
    response = await service.client.get("/v1/endpoints")

    assert response.status_code == 200, response.text
    urls = {item["alias"]: item["base_url"] for item in response.json()["items"]}
    redacted = "https://***@llm.example.com:8443/v1?api-key=***&x=***"
    assert urls == {"fast": redacted, "smart": redacted}


async def test_no_secret_appears_anywhere_in_the_answer(service: Service) -> None:
    text = (await service.client.get("/v1/endpoints")).text

    for secret in ("s3cret", "user", "k3y-t0k", "=1", "PROVIDER_KEY"):
        assert secret not in text
    assert '"model":"fast"' in text.replace(" ", "")  # the useful fields are still there
