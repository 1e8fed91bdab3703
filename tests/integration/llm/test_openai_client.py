"""OpenAIClient over real HTTP on loopback: the fake LLM server, plus a tiny canned server
for what the fake server cannot do (record headers, drop connections, cut bodies short)."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest

from app.engine.errors import (
    MalformedResponseError,
    PermanentLLMError,
    RateLimitedError,
    TransientLLMError,
)
from app.engine.llm import LLMRequest
from app.engine.resources.config import EndpointConfig
from app.llm import (
    LLMConfigError,
    LLMError,
    MissingAPIKeyError,
    OpenAIClient,
    SessionPool,
    openai_client,
    openai_compatible_client,
)
from app.llm.openai import BodyShape, chat_body, openai_response_format

MODEL = "fake-model"


def req(prompt: str = "Tell me about cats.", **kwargs: Any) -> LLMRequest:
    return LLMRequest(
        model=MODEL, system=kwargs.pop("system", "Be brief."), prompt=prompt, **kwargs
    )


@pytest.fixture
async def pool() -> AsyncIterator[SessionPool]:
    pool = SessionPool(connect_timeout_s=2.0)
    yield pool
    await pool.close_all()


@pytest.fixture
def client(fake_llm: Any, pool: SessionPool) -> OpenAIClient:
    return OpenAIClient(MODEL, base_url=fake_llm.base_url, api_key="sk-test", pool=pool)


class Canned:
    """A loopback HTTP server giving every request the same raw answer; records requests."""

    def __init__(self, answer: bytes) -> None:
        self.answer = answer
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.server: asyncio.Server | None = None

    @property
    def base_url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/v1"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        start, *lines = head.strip().split("\r\n")
        headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        self.requests.append((start, headers, body))
        writer.write(self.answer)
        await writer.drain()
        writer.close()


def http(status: int, body: bytes, headers: dict[str, str] | None = None) -> bytes:
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    return (
        f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {len(body)}"
        f"\r\nConnection: close\r\n{extra}\r\n"
    ).encode() + body


async def canned(answer: bytes) -> Canned:
    server = Canned(answer)
    server.server = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    return server


@pytest.fixture
async def closing() -> AsyncIterator[list[Canned]]:
    servers: list[Canned] = []
    yield servers
    for server in servers:
        assert server.server is not None
        server.server.close()
        await server.server.wait_closed()


COMPLETION = json.dumps(
    {
        "model": "served-model",
        "choices": [{"message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1},
    }
).encode()


# --- success -----------------------------------------------------------------------------------


async def test_text_completion(client: OpenAIClient, fake_llm: Any) -> None:
    response = await client.complete(req())
    assert response.text.startswith("reply[")
    assert "Tell me about cats." in response.text
    assert response.finish_reason == "stop"
    assert response.model == MODEL
    assert response.input_tokens > 0
    assert response.output_tokens > 0
    assert response.rate_limit is None  # the fake server sends limits only when capped


async def test_replies_are_deterministic(client: OpenAIClient) -> None:
    first, second = await asyncio.gather(client.complete(req()), client.complete(req()))
    assert first.text == second.text


async def test_json_mode(client: OpenAIClient) -> None:
    data = json.loads((await client.complete(req(response_format="json"))).text)
    assert isinstance(data, dict)


async def test_json_schema_mode(client: OpenAIClient) -> None:
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "n": {"type": "integer"}},
    }
    data = json.loads((await client.complete(req(response_format=schema))).text)
    assert isinstance(data["name"], str)
    assert isinstance(data["n"], int)


async def test_max_tokens_truncates(client: OpenAIClient, fake_llm: Any) -> None:
    response = await client.complete(req("word " * 100, max_tokens=5))
    assert response.finish_reason == "length"
    assert response.output_tokens == 5
    assert [entry["max_tokens"] for entry in fake_llm.log()] == [5]


async def test_stop_sequence(client: OpenAIClient) -> None:
    response = await client.complete(req(stop=("]",)))
    assert response.text.startswith("reply[")
    assert "]" not in response.text


async def test_rate_limit_headers_on_success(client: OpenAIClient, fake_llm: Any) -> None:
    fake_llm.configure(rpm=600)
    response = await client.complete(req())
    info = response.rate_limit
    assert info is not None
    assert info.limit_requests == 600
    assert info.remaining_requests == 599
    assert info.reset_requests_s is not None
    assert 0 < info.reset_requests_s <= 60


async def test_sent_body_and_headers(pool: SessionPool, closing: list[Canned]) -> None:
    server = await canned(http(200, COMPLETION))
    closing.append(server)
    client = OpenAIClient(MODEL, base_url=server.base_url, api_key="sk-secret", pool=pool)
    response = await client.complete(req(temperature=0.2, max_tokens=9, stop=("END",), seed=7))
    start, headers, body = server.requests[0]
    assert start == "POST /v1/chat/completions HTTP/1.1"
    assert headers["authorization"] == "Bearer sk-secret"
    assert headers["content-type"] == "application/json"
    assert json.loads(body) == {
        "model": MODEL,
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Tell me about cats."},
        ],
        "temperature": 0.2,
        "max_tokens": 9,
        "stop": ["END"],
        "seed": 7,
    }
    assert (response.text, response.model, response.input_tokens) == ("hi", "served-model", 3)


async def test_no_system_message_and_no_key(pool: SessionPool, closing: list[Canned]) -> None:
    server = await canned(http(200, COMPLETION))
    closing.append(server)
    client = OpenAIClient(MODEL, base_url=server.base_url, pool=pool)
    await client.complete(req(system=""))
    _, headers, body = server.requests[0]
    assert "authorization" not in headers
    assert json.loads(body)["messages"] == [{"role": "user", "content": "Tell me about cats."}]


# --- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize("retry_after", [0.25, 2.5, 30.0])
async def test_429_carries_retry_after(
    client: OpenAIClient, fake_llm: Any, retry_after: float
) -> None:
    fake_llm.configure(rules=[{"match": "cats", "status": 429, "retry_after_s": retry_after}])
    with pytest.raises(RateLimitedError) as caught:
        await client.complete(req())
    assert caught.value.retry_after == pytest.approx(retry_after)
    assert caught.value.status_code == 429
    assert isinstance(caught.value, LLMError)
    assert "429" in str(caught.value)


async def test_429_from_the_server_rate_cap(client: OpenAIClient, fake_llm: Any) -> None:
    fake_llm.configure(rpm=1, rate_window_s=60)
    await client.complete(req())
    with pytest.raises(RateLimitedError) as caught:
        await client.complete(req())
    assert caught.value.retry_after is not None
    assert 0 < caught.value.retry_after <= 60
    assert caught.value.headers["x-ratelimit-remaining-requests"] == "0"


async def test_429_reset_header_only(pool: SessionPool, closing: list[Canned]) -> None:
    headers = {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "1m2.5s"}
    server = await canned(http(429, b'{"error": {"message": "slow down"}}', headers))
    closing.append(server)
    client = OpenAIClient(MODEL, base_url=server.base_url, pool=pool)
    with pytest.raises(RateLimitedError) as caught:
        await client.complete(req())
    assert caught.value.retry_after == 62.5
    assert "slow down" in str(caught.value)


@pytest.mark.parametrize("status", [500, 502, 503, 408, 409])
async def test_transient_statuses(client: OpenAIClient, fake_llm: Any, status: int) -> None:
    fake_llm.configure(rules=[{"match": "cats", "status": status}])
    with pytest.raises(TransientLLMError) as caught:
        await client.complete(req())
    assert caught.value.status_code == status


@pytest.mark.parametrize("status", [400, 401, 404, 422])
async def test_permanent_statuses_quote_the_provider(
    client: OpenAIClient, fake_llm: Any, status: int
) -> None:
    message = "The model `nope` does not exist"
    fake_llm.configure(rules=[{"match": "cats", "status": status, "reply": message}])
    with pytest.raises(PermanentLLMError) as caught:
        await client.complete(req())
    assert caught.value.status_code == status
    assert f"HTTP {status}" in str(caught.value)
    assert message in str(caught.value)


async def test_error_body_that_is_not_json(pool: SessionPool, closing: list[Canned]) -> None:
    server = await canned(http(502, b"<html>Bad Gateway</html>"))
    closing.append(server)
    client = OpenAIClient(MODEL, base_url=server.base_url, pool=pool)
    with pytest.raises(TransientLLMError, match="Bad Gateway"):
        await client.complete(req())


async def test_malformed_bodies(client: OpenAIClient, fake_llm: Any) -> None:
    fake_llm.configure(rules=[{"match": "cats", "malformed": True}])
    messages = []
    for _ in range(2):  # the fake server alternates truncated JSON and a missing `choices`
        with pytest.raises(MalformedResponseError) as caught:
            await client.complete(req())
        messages.append(str(caught.value))
    assert any("invalid JSON" in m for m in messages)
    assert any("choices" in m for m in messages)
    assert all("chatcmpl-" in m for m in messages)  # an excerpt of the body


@pytest.mark.parametrize(
    "body",
    [
        b"[]",
        b'{"choices": []}',
        b'{"choices": [{"message": {"content": 42}}]}',
        b'{"choices": "nope"}',
        b"\xff\xfe",
    ],
)
async def test_unreadable_completions(
    pool: SessionPool, closing: list[Canned], body: bytes
) -> None:
    server = await canned(http(200, body))
    closing.append(server)
    client = OpenAIClient(MODEL, base_url=server.base_url, pool=pool)
    with pytest.raises(MalformedResponseError):
        await client.complete(req())


async def test_refusal_is_permanent(pool: SessionPool, closing: list[Canned]) -> None:
    body = b'{"choices": [{"message": {"content": null, "refusal": "I cannot help."}}]}'
    server = await canned(http(200, body))
    closing.append(server)
    client = OpenAIClient(MODEL, base_url=server.base_url, pool=pool)
    with pytest.raises(PermanentLLMError, match="I cannot help"):
        await client.complete(req())


async def test_connection_refused(pool: SessionPool) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = OpenAIClient(MODEL, base_url=f"http://127.0.0.1:{port}/v1", pool=pool)
    with pytest.raises(TransientLLMError, match="ClientConnectorError"):
        await client.complete(req())


async def test_server_disconnect(pool: SessionPool, closing: list[Canned]) -> None:
    server = await canned(b"")
    closing.append(server)
    client = OpenAIClient(MODEL, base_url=server.base_url, pool=pool)
    with pytest.raises(TransientLLMError, match="ServerDisconnectedError"):
        await client.complete(req())


async def test_body_cut_short(pool: SessionPool, closing: list[Canned]) -> None:
    answer = http(200, COMPLETION).replace(b"Content-Length: ", b"Content-Length: 9")
    server = await canned(answer)
    closing.append(server)
    client = OpenAIClient(MODEL, base_url=server.base_url, pool=pool)
    with pytest.raises(TransientLLMError, match="ClientPayloadError"):
        await client.complete(req())


async def test_hang_times_out_with_timeout_error(client: OpenAIClient, fake_llm: Any) -> None:
    fake_llm.configure(rules=[{"match": "cats", "hang": True}])
    with pytest.raises(TimeoutError) as caught:
        async with asyncio.timeout(0.2):
            await client.complete(req())
    assert not isinstance(caught.value, LLMError)
    fake_llm.configure()
    assert (await client.complete(req())).text.startswith("reply[")  # the client still works


async def test_cancellation_propagates(client: OpenAIClient, fake_llm: Any) -> None:
    fake_llm.configure(rules=[{"match": "cats", "hang": True}])
    task = asyncio.create_task(client.complete(req()))
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


# --- factories and request building ------------------------------------------------------------


async def test_openai_factory_needs_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MY_OPENAI_KEY", raising=False)
    endpoint = EndpointConfig(provider="openai", model="gpt-4o-mini", api_key_env="MY_OPENAI_KEY")
    with pytest.raises(MissingAPIKeyError, match=r"'smart'.*MY_OPENAI_KEY"):
        openai_client("smart", endpoint)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(MissingAPIKeyError, match="OPENAI_API_KEY"):
        openai_client("smart", EndpointConfig(provider="openai", model="gpt-4o-mini"))


async def test_openai_factory_round_trip(monkeypatch: pytest.MonkeyPatch, fake_llm: Any) -> None:
    monkeypatch.setenv("MY_OPENAI_KEY", "sk-x")
    endpoint = EndpointConfig(
        provider="openai", model=MODEL, base_url=fake_llm.base_url, api_key_env="MY_OPENAI_KEY"
    )
    client = openai_client("smart", endpoint)
    try:
        response = await client.complete(req(max_tokens=3))
    finally:
        await client.aclose()
    assert response.finish_reason == "length"  # sent as max_completion_tokens
    assert [entry["max_tokens"] for entry in fake_llm.log()] == [3]


async def test_compatible_factory(monkeypatch: pytest.MonkeyPatch, fake_llm: Any) -> None:
    with pytest.raises(LLMConfigError, match="base_url"):
        openai_compatible_client("local", EndpointConfig(provider="openai-compatible", model="m"))
    monkeypatch.delenv("VLLM_KEY", raising=False)
    keyed = EndpointConfig(
        provider="openai-compatible",
        model=MODEL,
        base_url=fake_llm.base_url,
        api_key_env="VLLM_KEY",
    )
    with pytest.raises(MissingAPIKeyError, match="VLLM_KEY"):
        openai_compatible_client("local", keyed)
    endpoint = EndpointConfig(provider="openai-compatible", model=MODEL, base_url=fake_llm.base_url)
    client = openai_compatible_client("local", endpoint)
    try:
        assert (await client.complete(req())).text.startswith("reply[")
    finally:
        await client.aclose()


def test_response_formats() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    assert openai_response_format("text") is None
    assert openai_response_format("json") == {"type": "json_object"}
    assert openai_response_format(schema) == {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": schema, "strict": False},
    }
    named = {"name": "thing", "schema": schema, "strict": True}
    assert openai_response_format(named) == {"type": "json_schema", "json_schema": named}
    full = {"type": "json_schema", "json_schema": named}
    assert openai_response_format(full) is full


def test_body_leaves_out_unset_options() -> None:
    body = chat_body(LLMRequest(model="", system="", prompt="x", response_format="json"), "dflt")
    assert body == {
        "model": "dflt",
        "messages": [{"role": "user", "content": "x"}],
        "response_format": {"type": "json_object"},
    }
    shape = BodyShape(max_tokens_field="max_completion_tokens")
    assert "max_completion_tokens" in chat_body(req(max_tokens=1), "m", shape)
