"""AnthropicClient over real HTTP on loopback: the fake LLM server's Messages API, plus a
tiny canned server to check the headers sent and Anthropic's own rate-limit headers."""

from __future__ import annotations

import asyncio
import json
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
from app.llm import AnthropicClient, MissingAPIKeyError, SessionPool, anthropic_client
from app.llm.anthropic import DEFAULT_MAX_TOKENS, JSON_INSTRUCTION
from app.llm.anthropic_body import JSON_TOOL, JSON_TOOL_DESCRIPTION

MODEL = "claude-fake"


def req(prompt: str = "Tell me about owls.", **kwargs: Any) -> LLMRequest:
    return LLMRequest(
        model=MODEL, system=kwargs.pop("system", "Be brief."), prompt=prompt, **kwargs
    )


@pytest.fixture
async def pool() -> AsyncIterator[SessionPool]:
    pool = SessionPool(connect_timeout_s=2.0)
    yield pool
    await pool.close_all()


@pytest.fixture
def client(fake_llm: Any, pool: SessionPool) -> AnthropicClient:
    return AnthropicClient(MODEL, api_key="ak-test", base_url=fake_llm.root_url, pool=pool)


class Canned:
    """A loopback HTTP server giving every request the same answer; records requests."""

    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str]) -> None:
        payload = json.dumps(body).encode()
        extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.answer = (
            f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\nConnection: close\r\n{extra}\r\n"
        ).encode() + payload
        self.requests: list[tuple[str, dict[str, str], Any]] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        start, *lines = head.strip().split("\r\n")
        headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        self.requests.append((start, headers, json.loads(body)))
        writer.write(self.answer)
        await writer.drain()
        writer.close()


@pytest.fixture
async def canned() -> AsyncIterator[Any]:
    servers: list[asyncio.Server] = []

    async def start(status: int, body: dict[str, Any], **headers: str) -> tuple[Canned, str]:
        canned = Canned(status, body, {k.replace("_", "-"): v for k, v in headers.items()})
        server = await asyncio.start_server(canned.handle, "127.0.0.1", 0)
        servers.append(server)
        return canned, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


def message(text: str, stop_reason: str = "end_turn") -> dict[str, Any]:
    return {
        "type": "message",
        "model": "claude-served",
        "content": [{"type": "text", "text": text}],
        "stop_reason": stop_reason,
        "usage": {"input_tokens": 11, "output_tokens": 4},
    }


async def test_round_trip(client: AnthropicClient, fake_llm: Any) -> None:
    response = await client.complete(req())
    assert response.text.startswith("reply[")
    assert "Tell me about owls." in response.text
    assert response.finish_reason == "stop"
    assert response.extra["stop_reason"] == "end_turn"
    assert response.model == MODEL
    assert response.input_tokens > 0
    assert response.output_tokens > 0
    [entry] = fake_llm.log()
    assert entry["path"] == "/v1/messages"
    assert entry["system"] == "Be brief."
    assert entry["max_tokens"] == DEFAULT_MAX_TOKENS


async def test_base_url_with_v1(fake_llm: Any, pool: SessionPool) -> None:
    client = AnthropicClient(MODEL, api_key="k", base_url=fake_llm.base_url, pool=pool)
    assert (await client.complete(req())).text.startswith("reply[")


async def test_max_tokens_and_stop_sequences(client: AnthropicClient) -> None:
    truncated = await client.complete(req("word " * 100, max_tokens=4))
    assert (truncated.finish_reason, truncated.extra["stop_reason"]) == ("length", "max_tokens")
    assert truncated.output_tokens == 4
    stopped = await client.complete(req(stop=("]",)))
    assert (stopped.finish_reason, stopped.extra["stop_reason"]) == ("stop", "stop_sequence")


def tool_answer(data: dict[str, Any], name: str = JSON_TOOL) -> dict[str, Any]:
    use = {"type": "tool_use", "id": "toolu_1", "name": name, "input": data}
    return {**message(""), "content": [use], "stop_reason": "tool_use"}


async def test_json_mode_is_a_forced_tool(canned: Any, pool: SessionPool) -> None:
    server, url = await canned(200, tool_answer({"ok": True}))
    client = AnthropicClient(MODEL, api_key="k", base_url=url, pool=pool)
    response = await client.complete(req(response_format="json", temperature=0.0))
    assert json.loads(response.text) == {"ok": True}
    assert (response.finish_reason, response.tool_calls) == ("stop", ())
    start, headers, body = server.requests[0]
    assert start == "POST /v1/messages HTTP/1.1"
    assert headers["x-api-key"] == "k"
    assert headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in headers
    assert body == {
        "model": MODEL,
        "max_tokens": DEFAULT_MAX_TOKENS,
        "messages": [{"role": "user", "content": "Tell me about owls."}],
        "system": "Be brief.",
        "temperature": 0.0,
        "tools": [
            {
                "name": JSON_TOOL,
                "description": JSON_TOOL_DESCRIPTION,
                "input_schema": {"type": "object"},
            }
        ],
        "tool_choice": {"type": "tool", "name": JSON_TOOL},
    }


async def test_schema_is_the_tool_input_schema(canned: Any, pool: SessionPool) -> None:
    server, url = await canned(200, tool_answer({"n": 1}))
    client = AnthropicClient(MODEL, api_key="k", base_url=url, pool=pool)
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    response = await client.complete(req(response_format={"name": "x", "schema": schema}))
    assert json.loads(response.text) == {"n": 1}
    sent = server.requests[0][2]
    assert sent["tools"][0]["input_schema"] == schema
    assert JSON_INSTRUCTION not in sent.get("system", "")


async def test_text_answer_to_a_forced_tool_is_unfenced(canned: Any, pool: SessionPool) -> None:
    _, url = await canned(200, message('```json\n{"ok": true}\n```'))
    client = AnthropicClient(MODEL, api_key="k", base_url=url, pool=pool)
    response = await client.complete(req(response_format="json"))
    assert json.loads(response.text) == {"ok": True}


async def test_json_with_own_tools_falls_back_to_the_instruction(
    canned: Any, pool: SessionPool
) -> None:
    server, url = await canned(200, message('```json\n{"n": 1}\n```'))
    client = AnthropicClient(MODEL, api_key="k", base_url=url, pool=pool)
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    tool = {"type": "function", "function": {"name": "look", "parameters": schema}}
    response = await client.complete(req(system="", response_format=schema, tools=(tool,)))
    assert json.loads(response.text) == {"n": 1}
    sent = server.requests[0][2]
    assert sent["system"].startswith(JSON_INSTRUCTION)
    assert json.dumps(schema) in sent["system"]
    assert [t["name"] for t in sent["tools"]] == ["look"]
    assert "tool_choice" not in sent


async def test_text_mode_keeps_fences(canned: Any, pool: SessionPool) -> None:
    _, url = await canned(200, message("```py\nx = 1\n```"))
    client = AnthropicClient(MODEL, api_key="k", base_url=url, pool=pool)
    assert (await client.complete(req())).text == "```py\nx = 1\n```"


async def test_anthropic_rate_limit_headers(canned: Any, pool: SessionPool) -> None:
    _, url = await canned(
        200,
        message("hi"),
        anthropic_ratelimit_requests_limit="50",
        anthropic_ratelimit_requests_remaining="49",
        anthropic_ratelimit_tokens_limit="80000",
        anthropic_ratelimit_tokens_remaining="79000",
        anthropic_ratelimit_tokens_reset="2000-01-01T00:00:00Z",
    )
    client = AnthropicClient(MODEL, api_key="k", base_url=url, pool=pool)
    response = await client.complete(req())
    info = response.rate_limit
    assert info is not None
    assert (info.limit_requests, info.remaining_requests) == (50, 49)
    assert (info.limit_tokens, info.remaining_tokens) == (80000, 79000)
    assert info.reset_tokens_s == 0.0  # a reset in the past means now
    assert (response.input_tokens, response.output_tokens) == (11, 4)
    assert response.model == "claude-served"


async def test_429_with_retry_after(client: AnthropicClient, fake_llm: Any) -> None:
    fake_llm.configure(rules=[{"match": "owls", "status": 429, "retry_after_s": 3.5}])
    with pytest.raises(RateLimitedError) as caught:
        await client.complete(req())
    assert caught.value.retry_after == 3.5
    assert "Rate limit" in str(caught.value)


async def test_429_reset_timestamp(canned: Any, pool: SessionPool) -> None:
    _, url = await canned(
        429,
        {"type": "error", "error": {"type": "rate_limit_error", "message": "slow"}},
        anthropic_ratelimit_requests_remaining="0",
        anthropic_ratelimit_requests_reset="2999-01-01T00:00:00Z",
    )
    client = AnthropicClient(MODEL, api_key="k", base_url=url, pool=pool)
    with pytest.raises(RateLimitedError) as caught:
        await client.complete(req())
    assert caught.value.retry_after is not None
    assert caught.value.retry_after > 1e9


@pytest.mark.parametrize("status", [529, 500, 503])
async def test_overload_and_server_errors(
    client: AnthropicClient, fake_llm: Any, status: int
) -> None:
    fake_llm.configure(rules=[{"match": "owls", "status": status}])
    with pytest.raises(TransientLLMError) as caught:
        await client.complete(req())
    assert caught.value.status_code == status


async def test_bad_request_quotes_the_message(client: AnthropicClient, fake_llm: Any) -> None:
    text = "max_tokens: must be at most 8192"
    fake_llm.configure(rules=[{"match": "owls", "status": 400, "reply": text}])
    with pytest.raises(PermanentLLMError, match="HTTP 400: max_tokens: must be at most 8192"):
        await client.complete(req())


async def test_malformed_bodies(client: AnthropicClient, fake_llm: Any) -> None:
    fake_llm.configure(rules=[{"match": "owls", "malformed": True}])
    messages = []
    for _ in range(2):
        with pytest.raises(MalformedResponseError) as caught:
            await client.complete(req())
        messages.append(str(caught.value))
    assert any("invalid JSON" in m for m in messages)
    assert any("content" in m for m in messages)
    assert all("msg_" in m for m in messages)


async def test_text_block_without_text(canned: Any, pool: SessionPool) -> None:
    _, url = await canned(200, {"content": [{"type": "text", "text": None}]})
    client = AnthropicClient(MODEL, api_key="k", base_url=url, pool=pool)
    with pytest.raises(MalformedResponseError):
        await client.complete(req())


async def test_hang_times_out(client: AnthropicClient, fake_llm: Any) -> None:
    fake_llm.configure(rules=[{"match": "owls", "hang": True}])
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.2):
            await client.complete(req())


async def test_factory(monkeypatch: pytest.MonkeyPatch, fake_llm: Any) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    endpoint = EndpointConfig(provider="anthropic", model=MODEL, base_url=fake_llm.root_url)
    with pytest.raises(MissingAPIKeyError, match=r"'writer'.*ANTHROPIC_API_KEY"):
        anthropic_client("writer", endpoint)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "ak-x")
    client = anthropic_client("writer", endpoint)
    try:
        assert (await client.complete(req())).text.startswith("reply[")
    finally:
        await client.aclose()
