"""Anthropic Messages API: POST ``{base_url}/v1/messages`` on the pooled session.

Bodies are built from the chat completions shape in :mod:`app.llm.anthropic_body` (system
prompt, images, tools, native JSON through a forced tool). Answers are read back into it:

- ``tool_use`` blocks become ``tool_calls``; the answer of the forced JSON tool becomes the
  text (the JSON of its input). When JSON had to be asked for by instruction instead, a
  Markdown code fence around the answer is removed.
- ``seed`` is not supported by the API and is not sent. Fields the API does not have
  (penalties, ``logprobs``, ``n`` > 1, ``reasoning_effort``) fail the call before it is sent
  (:mod:`app.llm.capabilities`).
- ``stop_reason`` is reported as ``finish_reason`` in the chat completions vocabulary
  (``end_turn``/``stop_sequence`` → ``stop``, ``max_tokens`` → ``length``, ``tool_use`` →
  ``tool_calls``); the original value is kept in ``LLMResponse.extra["stop_reason"]``.

>>> AnthropicClient("claude-sonnet-4-5", api_key="k").url
URL('https://api.anthropic.com/v1/messages')
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from multidict import CIMultiDict
from yarl import URL

from app.engine.llm import LLMRequest, LLMResponse, RateLimitInfo
from app.llm.anthropic_body import (
    DEFAULT_MAX_TOKENS,
    JSON_INSTRUCTION,
    JSON_TOOL,
    messages_body,
    native_json_tool,
    system_prompt,
)
from app.llm.capabilities import check_fields
from app.llm.errors import check_status, decode_json_object, malformed, token_count
from app.llm.headers import ANTHROPIC_RATE_HEADERS, rate_limit_info
from app.llm.pool import SessionPool, default_pool

__all__ = [
    "ANTHROPIC_BASE_URL",
    "DEFAULT_MAX_TOKENS",
    "JSON_INSTRUCTION",
    "AnthropicClient",
    "messages_body",
    "parse_message",
    "strip_code_fence",
    "system_prompt",
]

ANTHROPIC_BASE_URL = "https://api.anthropic.com"
ANTHROPIC_VERSION = "2023-06-01"
STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
}

_FENCE = re.compile(r"^\s*```[a-zA-Z]*\s*\n(.*?)\n?```\s*$", re.DOTALL)


# Anthropic reports the prompt cache's reads and writes apart from ``input_tokens``.
INPUT_KEYS = ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")


class AnthropicClient:
    """An :class:`~app.engine.llm.LLMClient` for Anthropic's Messages API."""

    def __init__(
        self,
        model: str,
        *,
        api_key: str,
        base_url: str = ANTHROPIC_BASE_URL,
        alias: str = "",
        headers: Mapping[str, str] | None = None,
        pool: SessionPool | None = None,
    ) -> None:
        self.model = model
        self._lease = (pool or default_pool()).lease(base_url)
        self.url = messages_url(self._lease.base_url)
        self._headers = CIMultiDict(
            {
                "Content-Type": "application/json",
                "x-api-key": api_key,
                "anthropic-version": ANTHROPIC_VERSION,
            }
        )
        self._headers.update(headers or {})
        self._where = f"anthropic endpoint {alias!r}" if alias else "anthropic"

    async def complete(self, request: LLMRequest) -> LLMResponse:
        """One message; raises ``LLMCallError`` subclasses on failure."""
        check_fields(request, "anthropic", "chat", self._where)
        native = native_json_tool(request) is not None
        body = json.dumps(messages_body(request, self.model)).encode()
        result = await self._lease.post(self.url, body, self._headers, self._where)
        check_status(self._where, result.status, result.headers, result.body)
        rate = rate_limit_info(result.headers, (ANTHROPIC_RATE_HEADERS,))
        response = parse_message(self._where, result.body, self.model, rate, json_tool=native)
        if request.response_format != "text" and not native:
            return _unfenced(response)
        return response

    async def aclose(self) -> None:
        """Release this client's share of the pooled session."""
        await self._lease.release()


def messages_url(base_url: str) -> URL:
    """``{base}/v1/messages``, accepting a base URL given with or without ``/v1``.

    >>> str(messages_url("http://127.0.0.1:8000/v1"))
    'http://127.0.0.1:8000/v1/messages'
    """
    base = base_url.rstrip("/")
    return URL(base + ("/messages" if base.endswith("/v1") else "/v1/messages"))


def parse_message(
    where: str,
    body: bytes,
    model: str = "",
    rate_limit: RateLimitInfo | None = None,
    *,
    json_tool: bool = False,
) -> LLMResponse:
    """Read a Messages API body: text blocks joined, tool uses, stop reason, token usage.

    With ``json_tool``, the input of the :data:`JSON_TOOL` use is the answer, as JSON text
    (or, if the model answered in text instead, that text without a code fence). Input
    tokens count the prompt cache's reads and writes too (Anthropic reports them apart);
    ``cached_tokens`` is the reads.
    """
    data = decode_json_object(where, body)
    content = data.get("content")
    if not isinstance(content, list):
        raise malformed(where, "no content list", body)
    texts = _texts(content)
    if texts is None:
        raise malformed(where, "a text block has no text", body)
    calls = _tool_calls(content)
    if json_tool:
        texts, calls = _json_answer(texts, calls), []
    stop, answered_by, usage = data.get("stop_reason"), data.get("model"), data.get("usage")
    finish = STOP_REASONS.get(stop, stop) if isinstance(stop, str) else None
    return LLMResponse(
        text="".join(texts),
        input_tokens=sum(token_count(usage, key) for key in INPUT_KEYS),
        output_tokens=token_count(usage, "output_tokens"),
        cached_tokens=token_count(usage, "cache_read_input_tokens"),
        finish_reason="stop" if json_tool and finish == "tool_calls" else finish,
        model=answered_by if isinstance(answered_by, str) else model,
        rate_limit=rate_limit,
        extra={"stop_reason": stop},
        tool_calls=tuple(calls),
    )


def _tool_calls(content: list[Any]) -> list[dict[str, Any]]:
    """``tool_use`` blocks as chat completions tool calls (arguments as JSON text)."""
    return [
        {
            "id": block.get("id"),
            "type": "function",
            "function": {"name": block.get("name"), "arguments": json.dumps(block.get("input"))},
        }
        for block in content
        if isinstance(block, dict) and block.get("type") == "tool_use"
    ]


def _json_answer(texts: list[str], calls: list[dict[str, Any]]) -> list[str]:
    for call in calls:
        if call["function"]["name"] == JSON_TOOL:
            return [call["function"]["arguments"]]
    # NOTE: a proxy that ignores tool_choice answers in text; the engine still checks the JSON
    return [strip_code_fence("".join(texts))]


def _texts(content: list[Any]) -> list[str] | None:
    texts = []
    for block in content:
        if isinstance(block, dict) and block.get("type") == "text":
            text = block.get("text")
            if not isinstance(text, str):
                return None
            texts.append(text)
    return texts


def strip_code_fence(text: str) -> str:
    """The body of a Markdown code fence wrapping the whole text, else the text.

    >>> strip_code_fence('```json\\n{"a": 1}\\n```')
    '{"a": 1}'
    """
    match = _FENCE.match(text)
    return match.group(1) if match else text


def _unfenced(response: LLMResponse) -> LLMResponse:
    text = strip_code_fence(response.text)
    return response if text is response.text else replace(response, text=text)
