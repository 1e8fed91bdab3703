"""An endpoint's ``cache`` is the ledger mode of the jobs that set none; a job's own mode
wins over it (SQLite and Postgres)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from app.settings import Settings
from tests.support.fake_llm import FakeLLM
from tests.support.service import Service, endpoints_file

GRAPH: dict[str, Any] = {
    "name": "ledger-default",
    "inputs": {"doc": {"type": "string"}},
    "nodes": [{"id": "a", "op": "llm", "alias": "fast", "prompt": "A: {doc}"}],
    "outputs": {"a": "a"},
}
INPUTS = [{"doc": f"document {i}"} for i in range(3)]


@pytest.fixture
def settings(settings: Settings, tmp_path: Path, fake_llm: FakeLLM) -> Settings:
    path = endpoints_file(tmp_path, fake_llm.base_url, cache="read_write")
    return Settings.model_validate({**settings.model_dump(), "endpoints_file": path})


async def run_job(service: Service, **extra: Any) -> dict[str, Any]:
    body = {"graph_id": "ledger-default", "inputs": INPUTS, **extra}
    submitted = await service.client.post("/v1/jobs", json=body)
    assert submitted.status_code == 202, submitted.text
    await service.run_jobs()
    return dict((await service.client.get(f"/v1/jobs/{submitted.json()['id']}")).json())


async def test_the_endpoints_cache_applies_unless_the_job_sets_one(
    service: Service, fake_llm: FakeLLM
) -> None:
    assert (await service.client.post("/v1/graphs", json=GRAPH)).status_code == 201
    await run_job(service, cache="off")
    await run_job(service)  # the endpoint's read_write: calls made and recorded
    assert len(fake_llm.log()) == 6
    fake_llm.reset()

    replayed = await run_job(service)
    off = await run_job(service, cache="off")

    assert (replayed["usage"]["calls_saved"], off["usage"]["calls_saved"]) == (3, 0)
    assert len(fake_llm.log()) == 3  # the job that said off
