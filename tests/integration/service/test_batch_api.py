"""The OpenAI Batch API, driven by the official ``openai`` SDK, unmodified, against the real
service on loopback; the lines' model calls go to the fake LLM server over HTTP.

Files go up as multipart and come back byte for byte; a batch runs through the job runner to
``completed`` with one output line per input line, each read by the SDK's own types; an
unknown model fails its line into the error file, not the batch; cancel mid-batch leaves the
lines that ended; a create the SDK retries after a 500 makes one batch; another tenant sees
none of it; bad input is a 4xx problem the SDK raises as its typed error.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import openai
import pytest
import yaml
from fastapi import FastAPI
from openai.types import Batch
from openai.types.chat import ChatCompletion
from sqlalchemy import select
from starlette.types import Message, Receive, Scope, Send

from app.db.models import Job
from app.services.runner.webhooks import WebhookDispatcher
from app.settings import Settings
from app.signing import DELIVERY_HEADER, HEADER, verify
from tests.integration.service.conftest import new_key
from tests.support.batch_sdk import Calls, chat_line, jsonl, upload, webhook_receiver
from tests.support.fake_llm import FakeLLM
from tests.support.polling import until
from tests.support.service import Service, loopback_webhooks, serve

CHAT = "/v1/chat/completions"


@pytest.fixture
def settings(settings: Settings, tmp_path: Path, fake_llm: FakeLLM) -> Settings:
    """``fast`` on the fake server, ``gpt-4o-mini`` mapped to it; files under ``tmp_path``."""
    alias = {"provider": "openai-compatible", "base_url": fake_llm.base_url, "max_retries": 0}
    claude = {"provider": "anthropic", "base_url": fake_llm.root_url, "model": "claude-x"}
    config = {
        "endpoints": {"fast": {**alias, "model": "fast", "max_concurrent": 64}, "claude": claude},
        "models": {"gpt-4o-mini": "fast"},
    }
    path = tmp_path / "batch-endpoints.yaml"
    path.write_text(yaml.safe_dump(config))
    return Settings.model_validate(
        {**settings.model_dump(), "endpoints_file": path, "files_dir": tmp_path / "files",
         "max_request_bytes": 5_000_000}
    )  # fmt: skip


OPENED: list[openai.AsyncOpenAI] = []


@pytest.fixture(autouse=True)
async def close_clients() -> AsyncIterator[None]:
    yield
    while OPENED:
        await OPENED.pop().close()


def sdk(service: Service, max_retries: int = 0, key: str | None = None) -> openai.AsyncOpenAI:
    """The SDK as a user builds it: ``base_url`` ending in ``/v1`` and an API key."""
    key = key or service.client.headers["Authorization"].removeprefix("Bearer ")
    client = openai.AsyncOpenAI(
        base_url=f"{service.url}/v1", api_key=key, max_retries=max_retries, timeout=60
    )
    OPENED.append(client)
    return client


async def run_until(service: Service, client: openai.AsyncOpenAI, batch_id: str) -> Batch:
    """Run the runner and poll ``batches.retrieve`` until the batch is final."""
    runner = asyncio.get_running_loop().create_task(service.run_jobs())
    try:
        for _ in range(600):
            batch = await client.batches.retrieve(batch_id)
            if batch.status in ("completed", "failed", "expired", "cancelled"):
                return batch
            await asyncio.sleep(0.05)
        raise AssertionError(f"batch {batch_id} did not end: {batch.status}")
    finally:
        await runner


async def output_lines(client: openai.AsyncOpenAI, file_id: str | None) -> list[dict[str, Any]]:
    if file_id is None:
        return []
    content = await client.files.content(file_id)
    return [json.loads(raw) for raw in content.text.splitlines()]


async def test_a_2000_line_batch_completes_with_every_line_answered(
    service: Service, fake_llm: FakeLLM
) -> None:
    client = sdk(service)
    lines = [chat_line(f"req-{i}", f"Say {i}.", model="gpt-4o-mini" if i % 2 else "fast")
             for i in range(2_000)]  # fmt: skip
    lines.append(chat_line("unknown-model", "Hi.", model="no-such-model"))
    file_id = await upload(client, jsonl(lines))
    stored = await client.files.retrieve(file_id)
    assert (stored.purpose, stored.bytes, stored.object) == ("batch", len(jsonl(lines)), "file")
    assert (await client.files.content(file_id)).content == jsonl(lines)

    created = await client.batches.create(
        input_file_id=file_id, endpoint=CHAT, completion_window="24h", metadata={"run": "a"}
    )
    assert created.status == "validating"
    batch = await run_until(service, client, created.id)

    assert batch.status == "completed", batch
    assert batch.request_counts is not None
    assert (batch.request_counts.total, batch.request_counts.completed) == (2_001, 2_000)
    assert batch.request_counts.failed == 1
    assert batch.metadata == {"run": "a"}
    assert batch.usage is not None
    assert batch.usage.input_tokens > 0
    assert batch.in_progress_at is not None
    assert batch.completed_at is not None
    outputs = await output_lines(client, batch.output_file_id)
    assert [one["custom_id"] for one in outputs] == [f"req-{i}" for i in range(2_000)]
    for one in outputs:
        completion = ChatCompletion.model_validate(one["response"]["body"])
        assert completion.choices[0].message.content
        assert completion.usage is not None
        assert completion.usage.total_tokens > 0
        assert one["response"]["status_code"] == 200
        assert one["error"] is None
    errors = await output_lines(client, batch.error_file_id)
    assert [one["custom_id"] for one in errors] == ["unknown-model"]
    assert errors[0]["response"]["status_code"] == 404
    assert "no-such-model" in errors[0]["response"]["body"]["error"]["message"]
    assert fake_llm.stats()["requests"] >= 2_000


async def test_batches_list_pages_with_after(service: Service) -> None:
    client = sdk(service)
    made = []
    for n in range(3):
        file_id = await upload(client, jsonl([chat_line(f"only-{n}", "Hi.")]))
        created = await client.batches.create(
            input_file_id=file_id, endpoint=CHAT, completion_window="24h"
        )
        made.append(created.id)
    first = await client.batches.list(limit=2)
    assert [b.id for b in first.data] == made[::-1][:2]
    assert first.has_more
    rest = await client.batches.list(limit=2, after=first.data[-1].id)
    assert [b.id for b in rest.data] == made[:1]
    assert not rest.has_more
    every = [b.id async for b in client.batches.list(limit=1)]
    assert every == made[::-1]


async def test_cancel_mid_batch_keeps_what_ended(service: Service, fake_llm: FakeLLM) -> None:
    fake_llm.configure(latency_ms=150)  # 64 lines at a time: about 1.5 s for all 640
    client = sdk(service)
    file_id = await upload(client, jsonl([chat_line(f"c-{i}", f"Say {i}.") for i in range(640)]))
    created = await client.batches.create(
        input_file_id=file_id, endpoint=CHAT, completion_window="24h"
    )
    runner = asyncio.get_running_loop().create_task(service.run_jobs())
    try:

        async def twenty_done() -> bool:
            counts = (await client.batches.retrieve(created.id)).request_counts
            return counts is not None and counts.completed >= 20

        await until(twenty_done)
        cancelling = await client.batches.cancel(created.id)
        assert cancelling.status in ("cancelling", "cancelled")
    finally:
        await runner
    batch = await client.batches.retrieve(created.id)
    assert batch.status == "cancelled"
    assert batch.cancelled_at is not None
    counts = batch.request_counts
    assert counts is not None
    assert 20 <= counts.completed < 640
    assert counts.total == 640
    outputs = await output_lines(client, batch.output_file_id)
    errors = await output_lines(client, batch.error_file_id)
    assert len(outputs) == counts.completed
    assert len(errors) == counts.failed
    answered = [one["custom_id"] for one in outputs + errors]
    assert len(set(answered)) == len(answered)


class FailFirstCreate:
    """ASGI middleware: the first ``POST /v1/batches`` runs, then its answer becomes a 500
    (the batch was made; the client never learns it), as a proxy or a lost reply would."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.app = app
        self.failed = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        hit = scope["type"] == "http" and scope["method"] == "POST"
        if not (hit and scope["path"] == "/v1/batches" and not self.failed):
            await self.app(scope, receive, send)
            return
        self.failed = True

        async def swallow(message: Message) -> None:
            return None

        await self.app(scope, receive, swallow)
        body = b'{"type": "urn:inf-engine:problem:internal", "status": 500}'
        await send({"type": "http.response.start", "status": 500,
                    "headers": [(b"content-type", b"application/problem+json")]})  # fmt: skip
        await send({"type": "http.response.body", "body": body})


@pytest.fixture
async def flaky_service(settings: Settings) -> AsyncIterator[Service]:
    def wrap(app: FastAPI) -> None:
        app.add_middleware(FailFirstCreate)

    async with serve(settings, wrap=wrap) as running:
        key = await new_key(running, "a")
        running.client.headers["Authorization"] = f"Bearer {key}"
        yield running


async def test_a_create_the_sdk_retries_after_a_500_makes_one_batch(
    flaky_service: Service,
) -> None:
    client = sdk(flaky_service, max_retries=2)
    file_id = await upload(client, jsonl([chat_line("once", "Hi.")]))
    created = await client.batches.create(
        input_file_id=file_id, endpoint=CHAT, completion_window="24h"
    )
    listed = await client.batches.list()
    assert [b.id for b in listed.data] == [created.id]


async def test_an_idempotency_key_answers_the_first_batch(service: Service) -> None:
    client = sdk(service)
    file_id = await upload(client, jsonl([chat_line("k", "Hi.")]))
    options = {"extra_headers": {"Idempotency-Key": "k-1"}}
    first = await client.batches.create(
        input_file_id=file_id,
        endpoint=CHAT,
        completion_window="24h",
        **options,  # type: ignore[arg-type]
    )
    again = await client.batches.create(
        input_file_id=file_id,
        endpoint=CHAT,
        completion_window="24h",
        **options,  # type: ignore[arg-type]
    )
    assert again.id == first.id
    with pytest.raises(openai.ConflictError):
        await client.batches.create(
            input_file_id=file_id, endpoint=CHAT, completion_window="24h",
            metadata={"other": "request"}, **options,  # type: ignore[arg-type]
        )  # fmt: skip


async def test_another_tenant_sees_none_of_it(service: Service) -> None:
    client = sdk(service)
    file_id = await upload(
        client, jsonl([chat_line("mine", "Hi."), chat_line("x", "Hi.", model="nope")])
    )
    created = await client.batches.create(
        input_file_id=file_id, endpoint=CHAT, completion_window="24h"
    )
    batch = await run_until(service, client, created.id)
    assert batch.output_file_id
    assert batch.error_file_id
    other = sdk(service, key=await new_key(service, "b"))
    for file in (file_id, batch.output_file_id, batch.error_file_id):
        with pytest.raises(openai.NotFoundError):
            await other.files.retrieve(file)
        with pytest.raises(openai.NotFoundError):
            await other.files.content(file)
        with pytest.raises(openai.NotFoundError):
            await other.files.delete(file)
    with pytest.raises(openai.NotFoundError):
        await other.batches.retrieve(created.id)
    with pytest.raises(openai.NotFoundError):
        await other.batches.cancel(created.id)
    with pytest.raises(openai.NotFoundError):
        await other.batches.create(input_file_id=file_id, endpoint=CHAT, completion_window="24h")
    assert (await other.batches.list()).data == []
    assert (await other.files.list()).data == []


BAD_LINES = [
    (b"{not json\n", "(line)"),
    (jsonl([{"method": "POST", "url": CHAT, "body": {}}]), "custom_id"),
    (jsonl([{**chat_line("a", "Hi."), "method": "GET"}]), "method"),
    (jsonl([{**chat_line("a", "Hi."), "url": "/v1/embeddings"}]), "url"),
    (jsonl([chat_line("same", "Hi."), chat_line("same", "Ho.")]), "custom_id"),
]


@pytest.mark.parametrize(("body", "field"), BAD_LINES)
async def test_a_bad_line_is_a_422_naming_its_line(
    service: Service, body: bytes, field: str
) -> None:
    client = sdk(service)
    file_id = await upload(client, body)
    with pytest.raises(openai.UnprocessableEntityError) as raised:
        await client.batches.create(input_file_id=file_id, endpoint=CHAT, completion_window="24h")
    problem = raised.value.body
    assert isinstance(problem, dict)
    assert problem["type"] == "urn:inf-engine:problem:invalid-input"
    issue = problem["errors"][-1]
    assert issue["field"] == field
    assert issue["line"] == (2 if b"same" in body else 1)
    assert (await client.batches.list()).data == []


async def test_bad_requests_are_typed_sdk_errors(service: Service) -> None:
    client = sdk(service)
    with pytest.raises(openai.NotFoundError):
        await client.batches.create(
            input_file_id="file-nope", endpoint=CHAT, completion_window="24h"
        )
    other = await upload(client, jsonl([chat_line("a", "Hi.")]), purpose="user_data")
    with pytest.raises(openai.UnprocessableEntityError) as wrong_purpose:
        await client.batches.create(input_file_id=other, endpoint=CHAT, completion_window="24h")
    assert wrong_purpose.value.body["errors"][0]["field"] == "input_file_id"  # type: ignore[index]
    batch_file = await upload(client, jsonl([chat_line("a", "Hi.")]))
    with pytest.raises(openai.UnprocessableEntityError) as endpoint:
        await client.batches.create(
            input_file_id=batch_file, endpoint="/v1/embeddings", completion_window="24h"
        )
    assert "/v1/embeddings" in endpoint.value.body["errors"][0]["message"]  # type: ignore[index]
    with pytest.raises(openai.UnprocessableEntityError):
        await client.files.create(file=("x.jsonl", b"{}\n"), purpose="nonsense")  # type: ignore[arg-type]


async def test_a_body_the_engine_cannot_serve_fails_its_line_naming_the_field(
    service: Service, fake_llm: FakeLLM
) -> None:
    fake_llm.configure(log=True)
    client = sdk(service)
    lines = [chat_line("ok", "Hi.", max_tokens=20, temperature=0.2, stop=["\n\n"], seed=1),
             chat_line("tools", "Hi.", tools=[]), chat_line("top_q", "Hi.", top_q=0.5),
             chat_line("hot", "Hi.", temperature=3)]  # fmt: skip
    file_id = await upload(client, jsonl(lines))
    created = await client.batches.create(
        input_file_id=file_id, endpoint=CHAT, completion_window="24h"
    )
    batch = await run_until(service, client, created.id)
    assert batch.request_counts is not None
    assert batch.request_counts.completed == 1
    errors = {one["custom_id"]: one for one in await output_lines(client, batch.error_file_id)}
    message = {name: errors[name]["response"]["body"]["error"]["message"] for name in errors}
    assert message["tools"].startswith("body.tools:")
    assert message["top_q"] == "body.top_q: unsupported field"
    assert message["hot"].startswith("body.temperature:")
    assert {one["response"]["status_code"] for one in errors.values()} == {400}
    sent = fake_llm.log()
    assert len(sent) == 1  # only the line that can be served was sent, with its options
    assert (sent[0]["system"], sent[0]["prompt"], sent[0]["max_tokens"]) == ("Be brief.", "Hi.", 20)


@pytest.fixture
async def small_limits(settings: Settings) -> AsyncIterator[Service]:
    """The service with a 100 kB request limit, 1 MB uploads and 10-line batch files."""
    small = {"max_request_bytes": 100_000, "max_file_bytes": 1_000_000, "batch_max_lines": 10}
    async with serve(Settings.model_validate({**settings.model_dump(), **small})) as running:
        key = await new_key(running, "a")
        running.client.headers["Authorization"] = f"Bearer {key}"
        yield running


async def test_upload_limits_are_the_file_limits(small_limits: Service) -> None:
    client = sdk(small_limits)
    big = b"x" * 500_000 + b"\n"  # over the request limit, under the file limit
    assert (await client.files.retrieve(await upload(client, big, "user_data"))).bytes == len(big)
    with pytest.raises(openai.APIStatusError) as too_big:
        await upload(client, b"x" * 1_100_000, "user_data")
    assert too_big.value.status_code == 413
    with pytest.raises(openai.APIStatusError) as too_many:
        await upload(client, jsonl([chat_line(f"l-{i}", "Hi.") for i in range(11)]))
    assert too_many.value.status_code == 413
    assert "10 lines" in str(too_many.value.body)
    assert [f.bytes for f in (await client.files.list()).data] == [len(big)]


async def test_a_deleted_file_is_gone(service: Service) -> None:
    client = sdk(service)
    file_id = await upload(client, jsonl([chat_line("a", "Hi.")]))
    deleted = await client.files.delete(file_id)
    assert (deleted.id, deleted.deleted) == (file_id, True)
    with pytest.raises(openai.NotFoundError):
        await client.files.content(file_id)
    assert (await client.files.list()).data == []


@pytest.fixture
async def hooks() -> AsyncIterator[tuple[str, Calls]]:
    """A webhook receiver on loopback: its URL and the calls it got."""
    async with webhook_receiver() as receiver:
        yield receiver


@pytest.fixture
async def hooked_service(settings: Settings) -> AsyncIterator[Service]:
    async with serve(loopback_webhooks(settings)) as running:
        key = await new_key(running, "a")
        running.client.headers["Authorization"] = f"Bearer {key}"
        yield running


async def test_an_ended_batch_sends_a_signed_openai_event(
    hooked_service: Service, hooks: tuple[str, list[tuple[bytes, dict[str, str]]]]
) -> None:
    url, calls = hooks
    client = sdk(hooked_service)
    file_id = await upload(
        client, jsonl([chat_line("a", "Hi."), chat_line("b", "Hi.", model="nope")])
    )
    created = await client.batches.create(
        input_file_id=file_id, endpoint=CHAT, completion_window="24h",
        extra_body={"webhook_url": url},
    )  # fmt: skip
    await hooked_service.run_jobs()
    runtime = hooked_service.runtime
    sender = WebhookDispatcher(runtime.sessions, runtime.settings, runtime.metrics)
    try:
        await sender.deliver_due()
    finally:
        await sender.stop()
    assert len(calls) == 1
    body, headers = calls[0]
    event = json.loads(body)
    assert (event["object"], event["type"], event["data"]) == (
        "event", "batch.completed", {"id": created.id},
    )  # fmt: skip
    secret = (await hooked_service.client.get("/v1/webhooks/secret")).json()["secret"]
    assert verify(secret, headers[DELIVERY_HEADER], body, headers[HEADER])
    batch = await client.batches.retrieve(created.id)
    assert batch.status == "completed"
    assert batch.output_file_id is not None
    assert batch.error_file_id is not None


@pytest.fixture
async def narrow_service(
    settings: Settings, tmp_path: Path, fake_llm: FakeLLM
) -> AsyncIterator[Service]:
    """The service with ``fast`` limited to 3 calls at a time."""
    alias = {"provider": "openai-compatible", "base_url": fake_llm.base_url, "max_retries": 0}
    config = {"endpoints": {"fast": {**alias, "model": "fast", "max_concurrent": 3}}}
    path = tmp_path / "narrow.yaml"
    path.write_text(yaml.safe_dump(config))
    narrow = Settings.model_validate({**settings.model_dump(), "endpoints_file": path})
    async with serve(narrow) as running:
        key = await new_key(running, "a")
        running.client.headers["Authorization"] = f"Bearer {key}"
        yield running


async def test_a_batch_and_a_job_share_the_alias_limit(
    narrow_service: Service, fake_llm: FakeLLM
) -> None:
    fake_llm.configure(latency_ms=30)
    client = sdk(narrow_service)
    graph = {"name": "echo", "inputs": {"text": {"type": "string"}}, "outputs": {"a": "a"},
             "nodes": [{"id": "a", "op": "llm", "alias": "fast", "system": "Echo.",
                        "prompt": "{text}"}]}  # fmt: skip
    assert (await narrow_service.client.post("/v1/graphs", json=graph)).status_code in (200, 201)
    inputs = [{"text": f"job {i}"} for i in range(30)]
    job = await narrow_service.client.post("/v1/jobs", json={"graph_id": "echo", "inputs": inputs})
    assert job.status_code in (200, 201, 202), job.text
    file_id = await upload(client, jsonl([chat_line(f"b-{i}", f"batch {i}") for i in range(30)]))
    created = await client.batches.create(
        input_file_id=file_id, endpoint=CHAT, completion_window="24h"
    )
    batch = await run_until(narrow_service, client, created.id)
    assert batch.status == "completed"
    async with narrow_service.runtime.sessions() as session:
        rows = {row.kind: row for row in await session.scalars(select(Job))}
    batch_run, job_run = rows["openai_batch"], rows["batch"]
    assert batch_run.started_at is not None
    assert job_run.finished_at is not None
    # both ran at once (the batch started before the job ended), and together never had more
    # than the alias's 3 calls in flight: the gate serves waiting calls in order, so the
    # batch's lines queued behind the job's items
    assert batch_run.started_at < job_run.finished_at
    assert fake_llm.stats()["peak_in_flight"] <= 3
    assert fake_llm.stats()["requests"] == 60


async def test_a_queued_batch_cancels_at_once_with_no_files(service: Service) -> None:
    client = sdk(service)
    file_id = await upload(client, jsonl([chat_line(f"q-{i}", "Hi.") for i in range(5)]))
    created = await client.batches.create(
        input_file_id=file_id, endpoint=CHAT, completion_window="24h"
    )
    cancelled = await client.batches.cancel(created.id)
    assert cancelled.status == "cancelled"
    assert (cancelled.output_file_id, cancelled.error_file_id) == (None, None)
    assert cancelled.request_counts is not None
    assert (cancelled.request_counts.completed, cancelled.request_counts.failed) == (0, 0)
    await service.run_jobs()  # nothing left to run
    assert (await client.batches.retrieve(created.id)).status == "cancelled"


async def test_files_list_pages_with_after(service: Service) -> None:
    client = sdk(service)
    made = [await upload(client, jsonl([chat_line(f"f-{n}", "Hi.")])) for n in range(3)]
    first = await client.files.list(limit=2)
    assert [f.id for f in first.data] == made[::-1][:2]
    assert first.has_more
    every = [f.id async for f in client.files.list(limit=1)]
    assert every == made[::-1]


LOOKUP = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}
FORCED = {"type": "function", "function": {"name": "lookup"}}
CONVERSATION = [
    {"role": "system", "content": "Answer with {braces} kept."},
    {"role": "user", "content": "Find owls."},
    {"role": "assistant", "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}]},
    {"role": "tool", "tool_call_id": "c1", "content": "owls: 3"},
    {"role": "user", "content": [
        {"type": "text", "text": "And this one?"},
        {"type": "image_url", "image_url": {"url": "https://img.example/owl.png"}}]},
]  # fmt: skip


async def test_a_line_carries_a_full_chat_with_tools_and_sampling_fields(
    service: Service, fake_llm: FakeLLM
) -> None:
    fake_llm.configure(capture=True)
    client = sdk(service)
    body = {"model": "fast", "messages": CONVERSATION, "tools": [LOOKUP],
            "tool_choice": FORCED, "top_p": 0.5, "presence_penalty": 0.5, "n": 2}  # fmt: skip
    refused = {"model": "claude", "messages": CONVERSATION[:2], "logprobs": True}
    lines = [{"custom_id": "chat", "method": "POST", "url": CHAT, "body": body},
             {"custom_id": "refused", "method": "POST", "url": CHAT, "body": refused}]  # fmt: skip
    created = await client.batches.create(
        input_file_id=await upload(client, jsonl(lines)), endpoint=CHAT, completion_window="24h"
    )
    batch = await run_until(service, client, created.id)

    [sent] = fake_llm.log()
    assert sent["body"]["messages"] == CONVERSATION
    assert (sent["body"]["tools"], sent["body"]["tool_choice"]) == ([LOOKUP], FORCED)
    assert (sent["body"]["top_p"], sent["body"]["presence_penalty"], sent["body"]["n"]) == (
        0.5, 0.5, 2,
    )  # fmt: skip
    [answered] = await output_lines(client, batch.output_file_id)
    completion = ChatCompletion.model_validate(answered["response"]["body"])
    assert [choice.index for choice in completion.choices] == [0, 1]
    for choice in completion.choices:
        assert choice.finish_reason == "tool_calls"
        assert choice.message.tool_calls
        assert choice.message.tool_calls[0].function.name == "lookup"
    [error] = await output_lines(client, batch.error_file_id)
    assert (error["custom_id"], error["response"]["status_code"]) == ("refused", 400)
    assert "body.logprobs" in error["response"]["body"]["error"]["message"]
