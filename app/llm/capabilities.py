"""Which request fields each provider dialect and model family accepts, and the refusal.

A field a provider does not accept is refused before anything is sent, naming the field,
as a permanent error (retrying cannot help). Fields a model family is documented to reject
but that a graph commonly sets for every model (OpenAI reasoning models and ``temperature``
or ``stop``) are left out of the body instead; see :data:`DROPPED`.

>>> model_family("o3-mini"), model_family("gpt-5-mini"), model_family("gpt-4o")
('reasoning', 'reasoning', 'chat')
>>> refused_fields(LLMRequest("m", "", "hi", logprobs=True), "anthropic")
['logprobs']
"""

from __future__ import annotations

import re

from app.engine.llm import LLMRequest
from app.engine.resources.config import EndpointConfig
from app.llm.errors import ProviderPermanentError

Family = str  # "chat" or "reasoning"

_REASONING = re.compile(r"^(o\d|gpt-5)(?!.*-chat)")

REFUSED: dict[tuple[str, Family], frozenset[str]] = {
    ("anthropic", "chat"): frozenset(
        {"frequency_penalty", "presence_penalty", "logprobs", "top_logprobs", "reasoning_effort"}
    ),
    ("openai", "reasoning"): frozenset(
        {"top_p", "frequency_penalty", "presence_penalty", "logprobs", "top_logprobs"}
    ),
    ("openai", "chat"): frozenset({"reasoning_effort"}),
}
"""(dialect, family) -> fields refused; a pair not listed accepts every field."""

DROPPED: dict[tuple[str, Family], frozenset[str]] = {
    ("openai", "reasoning"): frozenset({"temperature", "stop"}),
}
"""(dialect, family) -> fields left out of the body rather than refused."""


class UnsupportedFieldError(ProviderPermanentError):
    """A request field the endpoint's provider (or model family) does not accept."""

    def __init__(self, where: str, field: str, family: Family) -> None:
        kind = "reasoning models" if family == "reasoning" else "this provider"
        super().__init__(f"{where}: field {field!r} is not supported by {kind}")
        self.field = field


def endpoint_refuses(endpoint: EndpointConfig) -> frozenset[str]:
    """The fields the endpoint's provider refuses; ``n`` stands for ``n`` > 1.

    Registered in entry point group ``inf_engine.provider_fields`` for upload checks.

    >>> sorted(endpoint_refuses(EndpointConfig(provider="openai", model="gpt-4o")))
    ['reasoning_effort']
    """
    if endpoint.provider == "anthropic":
        return REFUSED[("anthropic", "chat")] | {"n"}
    if endpoint.provider in ("openai", "azure"):
        family = endpoint.model_family or model_family(endpoint.model)
        return REFUSED.get(("openai", family), frozenset())
    return frozenset()


def model_family(model: str) -> Family:
    """``"reasoning"`` for OpenAI's o-series and GPT-5 models (not ``gpt-5-chat``), else chat."""
    return "reasoning" if _REASONING.match(model.rsplit("/", 1)[-1]) else "chat"


def refused_fields(request: LLMRequest, dialect: str, family: Family = "chat") -> list[str]:
    """The fields ``request`` sets that ``(dialect, family)`` refuses, in field order."""
    refused = REFUSED.get((dialect, family), frozenset())
    found = [name for name in request.set_fields() if name in refused]
    if dialect == "anthropic" and (request.n or 1) > 1:
        found.append("n")
    return found


def check_fields(request: LLMRequest, dialect: str, family: Family, where: str) -> None:
    """Raise :class:`UnsupportedFieldError` for the first refused field, if any."""
    refused = refused_fields(request, dialect, family)
    if refused:
        raise UnsupportedFieldError(where, refused[0], family)
