"""OpenAI chat completions, also for OpenAI-compatible servers (vLLM, TGI, Ollama, llama.cpp).

One POST to ``{base_url}/chat/completions`` per call (or to an Azure deployment URL), on the
pooled session of its base URL. Bodies are built in :mod:`app.llm.openai_body`. The hot path
is plain dicts, ``json.dumps``/``json.loads`` and headers built once.

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

from app.engine.llm import Choice, LLMRequest, LLMResponse, RateLimitInfo
from app.llm.capabilities import Family, check_fields
from app.llm.errors import (
    ProviderPermanentError,
    check_status,
    decode_json_object,
    malformed,
    token_count,
)
from app.llm.headers import OPENAI_RATE_HEADERS, rate_limit_info
from app.llm.openai_body import (  # re-exported: the body builders lived here first
    DEFAULT_SHAPE,
    BodyShape,
    chat_body,
    openai_response_format,
)
from app.llm.pool import SessionPool, default_pool

__all__ = [
    "DEFAULT_SHAPE",
    "OPENAI_BASE_URL",
    "BodyShape",
    "OpenAIClient",
    "chat_body",
    "openai_response_format",
    "parse_chat_completion",
]

OPENAI_BASE_URL = "https://api.openai.com/v1"


class OpenAIClient:
    """An :class:`~app.engine.llm.LLMClient` for the chat completions API.

    ``shape`` says how bodies are spelled (:class:`~app.llm.openai_body.BodyShape`); ``refuse``
    is the ``(dialect, family)`` whose refused fields (:mod:`app.llm.capabilities`) fail a call
    before it is sent. ``url`` replaces ``{base_url}/chat/completions`` (Azure's deployment
    URL); ``headers`` are sent on every call, after the defaults (the endpoint's extra headers).
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: str = OPENAI_BASE_URL,
        api_key: str | None = None,
        alias: str = "",
        provider: str = "openai",
        shape: BodyShape = DEFAULT_SHAPE,
        refuse: tuple[str, Family] = ("openai-compatible", "chat"),
        url: str | None = None,
        headers: Mapping[str, str] | None = None,
        pool: SessionPool | None = None,
    ) -> None:
        self.model = model
        self._lease = (pool or default_pool()).lease(base_url)
        self.url = URL(url or self._lease.base_url + "/chat/completions")
        self._headers = CIMultiDict({"Content-Type": "application/json"})
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._headers.update(headers or {})
        self._shape, self._refuse = shape, refuse
        self._where = f"{provider} endpoint {alias!r}" if alias else provider

    async def complete(self, request: LLMRequest) -> LLMResponse:
        """One chat completion; raises ``LLMCallError`` subclasses on failure."""
        check_fields(request, *self._refuse, self._where)
        body = chat_body(request, self.model, self._shape)
        result = await self._lease.post(
            self.url, json.dumps(body).encode(), self._headers, self._where
        )
        check_status(self._where, result.status, result.headers, result.body)
        rate = rate_limit_info(result.headers, (OPENAI_RATE_HEADERS,))
        return parse_chat_completion(self._where, result.body, self.model, rate)

    async def aclose(self) -> None:
        """Release this client's share of the pooled session."""
        await self._lease.release()


def parse_chat_completion(
    where: str, body: bytes, model: str = "", rate_limit: RateLimitInfo | None = None
) -> LLMResponse:
    """Read a chat completion body into an :class:`LLMResponse`.

    The first choice gives ``text``, ``tool_calls`` and ``finish_reason``; with several
    choices every one is in ``choices``; the first choice's ``logprobs`` go to ``extra``.
    """
    data = decode_json_object(where, body)
    raw = data.get("choices")
    if not isinstance(raw, list) or not raw:
        raise malformed(where, "no choices[0].message.content", body)
    choices = tuple(_choice(where, c, body) for c in raw)
    first, answered_by, usage = choices[0], data.get("model"), data.get("usage")
    logprobs = raw[0].get("logprobs") if isinstance(raw[0], dict) else None
    return LLMResponse(
        text=first.text,
        input_tokens=token_count(usage, "prompt_tokens"),
        output_tokens=token_count(usage, "completion_tokens"),
        cached_tokens=token_count(_details(usage), "cached_tokens"),
        finish_reason=first.finish_reason,
        model=answered_by if isinstance(answered_by, str) else model,
        rate_limit=rate_limit,
        extra={"logprobs": logprobs} if logprobs is not None else {},
        tool_calls=first.tool_calls,
        choices=choices if len(choices) > 1 else (),
    )


def _details(usage: Any) -> Any:
    """``usage.prompt_tokens_details`` (where OpenAI reports ``cached_tokens``), if any."""
    return usage.get("prompt_tokens_details") if isinstance(usage, dict) else None


def _choice(where: str, choice: Any, body: bytes) -> Choice:
    try:
        message = choice["message"]
        text = message.get("content")
    except (LookupError, TypeError, AttributeError):
        raise malformed(where, "no choices[0].message.content", body) from None
    tool_calls = message.get("tool_calls") or []
    if not isinstance(tool_calls, list) or not all(isinstance(c, dict) for c in tool_calls):
        raise malformed(where, "message.tool_calls is not a list of objects", body)
    if text is None and tool_calls:
        text = ""
    if not isinstance(text, str):
        raise _no_text(where, message, body)
    finish = choice.get("finish_reason")
    return Choice(text, tuple(tool_calls), finish if isinstance(finish, str) else None)


def _no_text(where: str, message: Mapping[str, Any], body: bytes) -> Exception:
    refusal = message.get("refusal")
    if isinstance(refusal, str) and refusal:
        return ProviderPermanentError(f"{where}: the model refused: {refusal}")
    return malformed(where, "choices[0].message.content is not text", body)
