"""Anthropic Messages API: POST ``{base_url}/v1/messages`` on the pooled session.

Differences from the chat completions shape, handled here:

- ``max_tokens`` is required by the API: :data:`DEFAULT_MAX_TOKENS` when the request sets none.
- There is no JSON mode. For ``response_format="json"`` (or a JSON schema) an instruction to
  answer with one JSON object only (conforming to the schema, if given) is appended to the
  system prompt, and a Markdown code fence around the answer is removed.
- ``seed`` is not supported by the API and is not sent.
- ``stop_reason`` is reported as ``finish_reason`` in the chat completions vocabulary
  (``end_turn``/``stop_sequence`` → ``stop``, ``max_tokens`` → ``length``); the original value
  is kept in ``LLMResponse.extra["stop_reason"]``.

>>> AnthropicClient("claude-sonnet-4-5", api_key="k").url
URL('https://api.anthropic.com/v1/messages')
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import Any

from multidict import CIMultiDict
from yarl import URL

from app.engine.llm import LLMRequest, LLMResponse, RateLimitInfo
from app.llm.errors import check_status, decode_json_object, malformed, token_count
from app.llm.headers import ANTHROPIC_RATE_HEADERS, rate_limit_info
from app.llm.pool import SessionPool, default_pool

ANTHROPIC_BASE_URL = "https://api.anthropic.com"
ANTHROPIC_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 1024
JSON_INSTRUCTION = (
    "Answer with a single JSON object and nothing else: no prose, no Markdown code fences."
)
STOP_REASONS = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length"}

_FENCE = re.compile(r"^\s*```[a-zA-Z]*\s*\n(.*?)\n?```\s*$", re.DOTALL)


class AnthropicClient:
    """An :class:`~app.engine.llm.LLMClient` for Anthropic's Messages API."""

    def __init__(
        self,
        model: str,
        *,
        api_key: str,
        base_url: str = ANTHROPIC_BASE_URL,
        alias: str = "",
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
        self._where = f"anthropic endpoint {alias!r}" if alias else "anthropic"

    async def complete(self, request: LLMRequest) -> LLMResponse:
        """One message; raises ``LLMCallError`` subclasses on failure."""
        body = json.dumps(messages_body(request, self.model)).encode()
        result = await self._lease.post(self.url, body, self._headers, self._where)
        check_status(self._where, result.status, result.headers, result.body)
        rate = rate_limit_info(result.headers, (ANTHROPIC_RATE_HEADERS,))
        response = parse_message(self._where, result.body, self.model, rate)
        return _unfenced(response) if wants_json(request.response_format) else response

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


def messages_body(request: LLMRequest, model: str) -> dict[str, Any]:
    """The request body; ``max_tokens`` always set, JSON formats turned into an instruction.

    >>> messages_body(LLMRequest(model="m", system="Be brief.", prompt="hi", stop=("X",)), "d")
    ... # doctest: +NORMALIZE_WHITESPACE
    {'model': 'm', 'max_tokens': 1024, 'messages': [{'role': 'user', 'content': 'hi'}],
     'system': 'Be brief.', 'stop_sequences': ['X']}
    """
    body: dict[str, Any] = {
        "model": request.model or model,
        "max_tokens": request.max_tokens if request.max_tokens is not None else DEFAULT_MAX_TOKENS,
        "messages": [{"role": "user", "content": request.prompt}],
    }
    system = system_prompt(request.system, request.response_format)
    if system:
        body["system"] = system
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.stop:
        body["stop_sequences"] = list(request.stop)
    return body


def system_prompt(system: str, response_format: str | dict[str, Any]) -> str:
    """The system prompt, with the JSON instruction appended when JSON is asked for.

    >>> system_prompt("", "json") == JSON_INSTRUCTION
    True
    """
    if not wants_json(response_format):
        return system
    instruction = JSON_INSTRUCTION
    if isinstance(response_format, dict):
        schema = response_format.get("schema", response_format)
        instruction += " It must conform to this JSON schema: " + json.dumps(schema)
    return f"{system}\n\n{instruction}" if system else instruction


def parse_message(
    where: str, body: bytes, model: str = "", rate_limit: RateLimitInfo | None = None
) -> LLMResponse:
    """Read a Messages API body: the text blocks joined, stop reason, token usage."""
    data = decode_json_object(where, body)
    content = data.get("content")
    if not isinstance(content, list):
        raise malformed(where, "no content list", body)
    texts = _texts(content)
    if texts is None:
        raise malformed(where, "a text block has no text", body)
    stop, answered_by, usage = data.get("stop_reason"), data.get("model"), data.get("usage")
    return LLMResponse(
        text="".join(texts),
        input_tokens=token_count(usage, "input_tokens"),
        output_tokens=token_count(usage, "output_tokens"),
        finish_reason=STOP_REASONS.get(stop, stop) if isinstance(stop, str) else None,
        model=answered_by if isinstance(answered_by, str) else model,
        rate_limit=rate_limit,
        extra={"stop_reason": stop},
    )


def wants_json(response_format: str | dict[str, Any]) -> bool:
    """Whether a request asks for JSON (``"json"`` or a schema)."""
    return response_format == "json" or isinstance(response_format, dict)


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
