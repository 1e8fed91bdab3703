"""OpenAI chat completions, also for OpenAI-compatible servers (vLLM, TGI, Ollama, llama.cpp).

One POST to ``{base_url}/chat/completions`` per call, on the pooled session of its base URL.
The hot path is plain dicts, ``json.dumps``/``json.loads`` and headers built once.

>>> client = OpenAIClient("gpt-4o-mini", api_key="sk-test")
>>> client.url
URL('https://api.openai.com/v1/chat/completions')
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from multidict import CIMultiDict
from yarl import URL

from app.engine.llm import LLMRequest, LLMResponse, RateLimitInfo
from app.llm.errors import (
    ProviderPermanentError,
    check_status,
    decode_json_object,
    malformed,
    token_count,
)
from app.llm.headers import OPENAI_RATE_HEADERS, rate_limit_info
from app.llm.pool import SessionPool, default_pool

OPENAI_BASE_URL = "https://api.openai.com/v1"


class OpenAIClient:
    """An :class:`~app.engine.llm.LLMClient` for the chat completions API.

    ``max_tokens_field`` is the body key for ``LLMRequest.max_tokens``: ``"max_tokens"``
    (what OpenAI-compatible servers read) or ``"max_completion_tokens"`` (what OpenAI's own
    API expects; its reasoning models reject ``max_tokens``).
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: str = OPENAI_BASE_URL,
        api_key: str | None = None,
        alias: str = "",
        provider: str = "openai",
        max_tokens_field: str = "max_tokens",
        pool: SessionPool | None = None,
    ) -> None:
        self.model = model
        self._lease = (pool or default_pool()).lease(base_url)
        self.url = URL(self._lease.base_url + "/chat/completions")
        self._headers = CIMultiDict({"Content-Type": "application/json"})
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._max_tokens_field = max_tokens_field
        self._where = f"{provider} endpoint {alias!r}" if alias else provider

    async def complete(self, request: LLMRequest) -> LLMResponse:
        """One chat completion; raises ``LLMCallError`` subclasses on failure."""
        body = chat_body(request, self.model, self._max_tokens_field)
        result = await self._lease.post(
            self.url, json.dumps(body).encode(), self._headers, self._where
        )
        check_status(self._where, result.status, result.headers, result.body)
        rate = rate_limit_info(result.headers, (OPENAI_RATE_HEADERS,))
        return parse_chat_completion(self._where, result.body, self.model, rate)

    async def aclose(self) -> None:
        """Release this client's share of the pooled session."""
        await self._lease.release()


def chat_body(
    request: LLMRequest, model: str, max_tokens_field: str = "max_tokens"
) -> dict[str, Any]:
    """The request body: model, messages, and only the options that are set.

    >>> chat_body(LLMRequest(model="m", system="", prompt="hi", seed=1), "default")
    {'model': 'm', 'messages': [{'role': 'user', 'content': 'hi'}], 'seed': 1}
    """
    messages = [{"role": "user", "content": request.prompt}]
    if request.system:
        messages.insert(0, {"role": "system", "content": request.system})
    body: dict[str, Any] = {"model": request.model or model, "messages": messages}
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.max_tokens is not None:
        body[max_tokens_field] = request.max_tokens
    if request.stop:
        body["stop"] = list(request.stop)
    if request.seed is not None:
        body["seed"] = request.seed
    response_format = openai_response_format(request.response_format)
    if response_format is not None:
        body["response_format"] = response_format
    return body


def openai_response_format(fmt: str | dict[str, Any]) -> dict[str, Any] | None:
    """The ``response_format`` field for a request's format; None for plain text.

    >>> openai_response_format("json")
    {'type': 'json_object'}
    >>> openai_response_format({"type": "object"})["json_schema"]["name"]
    'output'
    """
    if isinstance(fmt, str):
        return {"type": "json_object"} if fmt == "json" else None
    if fmt.get("type") in ("json_object", "json_schema"):
        return fmt  # already an OpenAI response_format
    if "schema" in fmt or "name" in fmt:
        return {"type": "json_schema", "json_schema": fmt}
    # strict mode would reject every schema that leaves a property optional
    schema = {"name": "output", "schema": fmt, "strict": False}
    return {"type": "json_schema", "json_schema": schema}


def parse_chat_completion(
    where: str, body: bytes, model: str = "", rate_limit: RateLimitInfo | None = None
) -> LLMResponse:
    """Read a chat completion body into an :class:`LLMResponse` (text of the first choice)."""
    data = decode_json_object(where, body)
    try:
        choice = data["choices"][0]
        message = choice["message"]
        text = message["content"]
    except (LookupError, TypeError):
        raise malformed(where, "no choices[0].message.content", body) from None
    if not isinstance(text, str):
        raise _no_text(where, message, body)
    finish, answered_by, usage = choice.get("finish_reason"), data.get("model"), data.get("usage")
    return LLMResponse(
        text=text,
        input_tokens=token_count(usage, "prompt_tokens"),
        output_tokens=token_count(usage, "completion_tokens"),
        finish_reason=finish if isinstance(finish, str) else None,
        model=answered_by if isinstance(answered_by, str) else model,
        rate_limit=rate_limit,
    )


def _no_text(where: str, message: Mapping[str, Any], body: bytes) -> Exception:
    refusal = message.get("refusal")
    if isinstance(refusal, str) and refusal:
        return ProviderPermanentError(f"{where}: the model refused: {refusal}")
    return malformed(where, "choices[0].message.content is not text", body)
