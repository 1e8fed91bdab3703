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


@dataclass(slots=True)
class LLMRequest:
    """One chat completion: a system and a user message plus sampling options."""

    model: str
    system: str
    prompt: str
    temperature: float | None = None
    max_tokens: int | None = None
    stop: tuple[str, ...] | None = None
    seed: int | None = None
    response_format: str | dict[str, Any] = "text"


@dataclass(frozen=True, slots=True)
class RateLimitInfo:
    """What the provider said about its limits (``x-ratelimit-*`` style headers)."""

    limit_requests: int | None = None
    remaining_requests: int | None = None
    reset_requests_s: float | None = None
    limit_tokens: int | None = None
    remaining_tokens: int | None = None
    reset_tokens_s: float | None = None


@dataclass(slots=True)
class LLMResponse:
    """A completion: the text and the facts about the call."""

    text: str
    input_tokens: int = 0
    output_tokens: int = 0
    finish_reason: str | None = None
    model: str = ""
    rate_limit: RateLimitInfo | None = None
    extra: dict[str, Any] = field(default_factory=dict)


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
