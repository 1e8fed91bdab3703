"""A batch's end, driven by the unmodified ``openai`` SDK against the service on loopback:
its output and error files are made as its run ends (no read needed).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import openai
import pytest
import yaml

from app.db.models import Job
from app.settings import Settings
from tests.support.batch_sdk import (
    CHAT,
    chat_line,
    file_lines,
    jsonl,
    sdk_client,
    stored_batches,
    upload,
)
from tests.support.fake_llm import FakeLLM
from tests.support.polling import until
from tests.support.service import Service, loopback_webhooks

Calls = list[tuple[bytes, dict[str, str]]]


@pytest.fixture
def settings(settings: Settings, tmp_path: Path, fake_llm: FakeLLM) -> Settings:
    """``fast`` on the fake server (64 calls at a time), webhooks allowed on loopback."""
    alias = {"provider": "openai-compatible", "base_url": fake_llm.base_url, "max_retries": 0}
    path = tmp_path / "window-endpoints.yaml"
    path.write_text(yaml.safe_dump({"endpoints": {"fast": {**alias, "model": "fast",
                                                            "max_concurrent": 64}}}))  # fmt: skip
    values = {**settings.model_dump(), "endpoints_file": path, "files_dir": tmp_path / "files"}
    return loopback_webhooks(Settings.model_validate(values))


@pytest.fixture
async def client(service: Service) -> AsyncIterator[openai.AsyncOpenAI]:
    async with sdk_client(service) as opened:
        yield opened


async def test_a_batch_is_completed_with_its_files_before_anyone_reads_it(
    service: Service, client: openai.AsyncOpenAI
) -> None:
    lines = [chat_line("a", "Hi."), chat_line("b", "Ho."), chat_line("x", "Hi.", model="nope")]
    created = await client.batches.create(
        input_file_id=await upload(client, jsonl(lines)), endpoint=CHAT, completion_window="24h"
    )
    await service.run_jobs()
    [stored] = await stored_batches(service)  # read from the database, not through the API
    assert stored.finalized_at is not None
    assert stored.output_file_id is not None
    assert stored.error_file_id is not None
    batch = await client.batches.retrieve(created.id)
    assert batch.status == "completed"
    assert (batch.output_file_id, batch.error_file_id) == (
        stored.output_file_id, stored.error_file_id,
    )  # fmt: skip
    assert [one["custom_id"] for one in await file_lines(client, batch.output_file_id)] == [
        "a", "b",
    ]  # fmt: skip
    assert [one["custom_id"] for one in await file_lines(client, batch.error_file_id)] == ["x"]


async def test_a_cancelled_batch_has_its_files_as_it_ends(
    service: Service, client: openai.AsyncOpenAI, fake_llm: FakeLLM
) -> None:
    fake_llm.configure(latency_ms=100)
    file_id = await upload(client, jsonl([chat_line(f"c-{i}", "Hi.") for i in range(200)]))
    created = await client.batches.create(
        input_file_id=file_id, endpoint=CHAT, completion_window="24h"
    )
    runner = asyncio.get_running_loop().create_task(service.run_jobs())
    try:
        await _until_some_done(service, created.id)
        await client.batches.cancel(created.id)
    finally:
        await runner
    [stored] = await stored_batches(service)
    assert stored.finalized_at is not None
    assert stored.output_file_id is not None
    batch = await client.batches.retrieve(created.id)
    assert batch.status == "cancelled"
    assert batch.request_counts is not None
    assert len(await file_lines(client, batch.output_file_id)) == batch.request_counts.completed


async def _until_some_done(service: Service, job_id: str) -> None:
    async def some() -> bool:
        async with service.runtime.sessions() as session:
            job = await session.get(Job, job_id, populate_existing=True)
        return job is not None and job.succeeded >= 10

    await until(some)
