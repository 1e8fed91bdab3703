"""A batch's end, driven by the unmodified ``openai`` SDK against the service on loopback:
its output and error files are made as its run ends (no read needed), and its deadline is
honoured (lines not done by then end ``batch_expired``, the answered ones are kept, the
batch is ``expired`` and its webhook says so). Only the documented ``24h`` window is
accepted; ``INF_BATCH_DEADLINE_CAP_S`` cuts the deadline short for the test.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import openai
import pytest
import yaml

from app.db.models import Job
from app.services.runner.webhooks import WebhookDispatcher
from app.settings import Settings
from tests.integration.service.conftest import new_key
from tests.support.batch_sdk import (
    CHAT,
    Calls,
    chat_line,
    file_lines,
    jsonl,
    sdk_client,
    stored_batches,
    upload,
    webhook_receiver,
)
from tests.support.fake_llm import FakeLLM
from tests.support.polling import until
from tests.support.service import Service, loopback_webhooks, serve


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
    for file_id, count in ((batch.output_file_id, 2), (batch.error_file_id, 1)):
        assert file_id is not None
        content = (await client.files.content(file_id)).content
        # The size stated is the size streamed (the lines' sizes kept as they were written).
        assert (await client.files.retrieve(file_id)).bytes == len(content) > 0
        assert content.count(b"\n") == count


@pytest.mark.parametrize("window", ["1h", "1s", "48h", "24 h"])
async def test_only_the_documented_window_is_accepted(
    client: openai.AsyncOpenAI, window: str
) -> None:
    file_id = await upload(client, jsonl([chat_line("a", "Hi.")]))
    with pytest.raises(openai.UnprocessableEntityError) as raised:
        await client.batches.create(
            input_file_id=file_id, endpoint=CHAT, completion_window=window,  # type: ignore[arg-type]
        )  # fmt: skip
    assert raised.value.body["errors"][0]["field"] == "completion_window"  # type: ignore[index]
    assert (await client.batches.list()).data == []


@pytest.fixture
async def hooks() -> AsyncIterator[tuple[str, Calls]]:
    """A webhook receiver on loopback: its URL and the calls it got."""
    async with webhook_receiver() as receiver:
        yield receiver


@pytest.fixture
async def short_service(settings: Settings) -> AsyncIterator[Service]:
    """The service with every batch's deadline capped at 3 s after its create."""
    capped = Settings.model_validate({**settings.model_dump(), "batch_deadline_cap_s": 3.0})
    async with serve(capped) as running:
        key = await new_key(running, "a")
        running.client.headers["Authorization"] = f"Bearer {key}"
        yield running


async def test_lines_not_done_by_the_deadline_end_expired(
    short_service: Service, fake_llm: FakeLLM, hooks: tuple[str, Calls]
) -> None:
    fake_llm.configure(latency_ms=400)  # 64 lines at a time: 960 lines need about 6 s
    url, calls = hooks
    async with sdk_client(short_service) as client:
        file_id = await upload(
            client, jsonl([chat_line(f"e-{i}", f"Say {i}.") for i in range(960)])
        )
        created = await client.batches.create(
            input_file_id=file_id, endpoint=CHAT, completion_window="24h",
            extra_body={"webhook_url": url},
        )  # fmt: skip
        assert created.completion_window == "24h"
        assert created.expires_at - created.created_at <= 4  # capped, not 24 h
        await short_service.run_jobs()
        batch = await client.batches.retrieve(created.id)
        outputs = await file_lines(client, batch.output_file_id)
        errors = await file_lines(client, batch.error_file_id)
    assert batch.status == "expired"
    assert batch.expired_at is not None
    assert batch.completed_at is None
    counts = batch.request_counts
    assert counts is not None
    assert 0 < counts.completed < 960
    assert counts.completed + counts.failed == counts.total == 960
    assert len(outputs) == counts.completed
    assert all(one["response"]["status_code"] == 200 for one in outputs)
    assert {one["error"]["code"] for one in errors} == {"batch_expired"}
    assert len(errors) == counts.failed
    assert sorted(one["custom_id"] for one in outputs + errors) == sorted(
        f"e-{i}" for i in range(960)
    )
    await _deliver(short_service)
    assert len(calls) == 1
    event = json.loads(calls[0][0])
    assert (event["type"], event["data"]) == ("batch.expired", {"id": created.id})


async def _deliver(service: Service) -> None:
    runtime = service.runtime
    sender = WebhookDispatcher(runtime.sessions, runtime.settings, runtime.metrics)
    try:
        await sender.deliver_due()
    finally:
        await sender.stop()


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
