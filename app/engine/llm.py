"""The contract between the engine and model providers (implemented in ``app.llm``).

A client turns an :class:`LLMRequest` into an :class:`LLMResponse`, or raises one of the
:class:`~app.engine.errors.LLMCallError` subclasses so the engine knows whether to retry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from app.engine.resources.config import EndpointConfig


Message = dict[str, Any]
"""A chat message in the chat completions shape: ``role``, ``content`` (text, or a list of
``text`` and ``image_url`` parts), and ``tool_calls`` / ``tool_call_id`` for tool use."""

OPTIONAL_FIELDS = (
    "temperature",
    "max_tokens",
    "stop",
    "seed",
    "tools",
    "tool_choice",
    "top_p",
    "frequency_penalty",
    "presence_penalty",
    "logprobs",
    "top_logprobs",
    "n",
    "reasoning_effort",
)
"""The request fields a provider may refuse; each is unset when ``None`` or empty."""


@dataclass(slots=True)
class LLMRequest:
    """One chat completion: the conversation plus sampling options.

    The conversation is ``system`` (if any), then ``messages``, then ``prompt`` as a last user
    message (if any); so a plain call sets ``system`` and ``prompt``, and a full chat (a Batch
    API line's body) sets ``messages`` alone.

    >>> [m["role"] for m in LLMRequest("m", "Be brief.", "hi").conversation()]
    ['system', 'user']
    """

    model: str
    system: str
    prompt: str
    temperature: float | None = None
    max_tokens: int | None = None
    stop: tuple[str, ...] | None = None
    seed: int | None = None
    response_format: str | dict[str, Any] = "text"
    messages: tuple[Message, ...] = ()
    tools: tuple[dict[str, Any], ...] = ()
    tool_choice: str | dict[str, Any] | None = None
    top_p: float | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    n: int | None = None
    reasoning_effort: str | None = None

    def conversation(self) -> list[Message]:
        """Every message in order, system first and the prompt last."""
        head: list[Message] = [{"role": "system", "content": self.system}] if self.system else []
        tail: list[Message] = [{"role": "user", "content": self.prompt}] if self.prompt else []
        return [*head, *self.messages, *tail]

    def set_fields(self) -> list[str]:
        """The optional fields this request sets, in :data:`OPTIONAL_FIELDS` order.

        >>> LLMRequest("m", "", "hi", top_p=0.5, tools=()).set_fields()
        ['top_p']
        """
        return [name for name in OPTIONAL_FIELDS if getattr(self, name) not in (None, (), [])]


@dataclass(frozen=True, slots=True)
class RateLimitInfo:
    """What the provider said about its limits (``x-ratelimit-*`` style headers)."""

    limit_requests: int | None = None
    remaining_requests: int | None = None
    reset_requests_s: float | None = None
    limit_tokens: int | None = None
    remaining_tokens: int | None = None
    reset_tokens_s: float | None = None


@dataclass(frozen=True, slots=True)
class Choice:
    """One of several answers (``n`` > 1): its text, tool calls and finish reason."""

    text: str
    tool_calls: tuple[dict[str, Any], ...] = ()
    finish_reason: str | None = None


@dataclass(slots=True)
class LLMResponse:
    """A completion: the text (of the first choice) and the facts about the call.

    ``tool_calls`` are the first choice's, in the chat completions shape (``id``, ``type``,
    ``function: {name, arguments}``); ``choices`` holds every choice when ``n`` > 1 was asked.
    """

    text: str
    input_tokens: int = 0
    output_tokens: int = 0
    finish_reason: str | None = None
    model: str = ""
    rate_limit: RateLimitInfo | None = None
    cached_tokens: int = 0  # input tokens the provider read from its prompt cache
    extra: dict[str, Any] = field(default_factory=dict)
    tool_calls: tuple[dict[str, Any], ...] = ()
    choices: tuple[Choice, ...] = ()


class LLMClient(Protocol):
    """An endpoint the engine can call. Implementations must be safe to share across tasks."""

    async def complete(self, request: LLMRequest) -> LLMResponse:
        """Run one completion or raise an ``LLMCallError`` subclass."""
        ...

    async def aclose(self) -> None:
        """Release connections; the client is not used afterwards."""
        ...


ClientFactory = Callable[[str, "EndpointConfig"], LLMClient]
"""Builds the client for ``(alias, endpoint config)``."""
