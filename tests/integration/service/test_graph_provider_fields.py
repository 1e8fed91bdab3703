"""An upload that sets a field the alias's provider does not accept gets a 422 naming it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from app.settings import Settings
from tests.support.fake_llm import FakeLLM
from tests.support.service import Service, endpoints_file


@pytest.fixture
def settings(db_url: str, fake_llm: FakeLLM, tmp_path: Path) -> Settings:
    return Settings(
        database_url=db_url,
        auto_migrate=False,
        endpoints_file=endpoints_file(tmp_path, fake_llm.root_url, provider="anthropic"),
        runner_enabled=False,
    )


def graph(**llm: Any) -> dict[str, Any]:
    node = {"id": "answer", "op": "llm", "alias": "fast", "prompt": "{q}", **llm}
    return {"name": "g", "inputs": {"q": {}}, "nodes": [node], "outputs": {"a": "answer"}}


async def test_refused_fields_are_named_at_upload(service: Service) -> None:
    response = await service.client.post(
        "/v1/graphs", json=graph(logprobs=True, n=2, top_p=0.5, frequency_penalty=0.1)
    )
    assert response.status_code == 422, response.text
    named = {(e["node"], e["field"]) for e in response.json()["errors"]}
    assert named == {("answer", "logprobs"), ("answer", "n"), ("answer", "frequency_penalty")}
    accepted = await service.client.post("/v1/graphs", json=graph(top_p=0.5, n=1))
    assert accepted.status_code == 201, accepted.text
