"""The client factories registered as entry points in group ``inf_engine.providers``.

Each is a :data:`~app.engine.llm.ClientFactory`: ``(alias, endpoint) -> LLMClient``. API keys
are read from the environment variable the endpoint names (``api_key_env``); OpenAI and
Anthropic default to ``OPENAI_API_KEY`` and ``ANTHROPIC_API_KEY``.

>>> from app.engine.resources.config import EndpointConfig
>>> simulated_client("fast", EndpointConfig(provider="simulated", model="sim-1")).model
'sim-1'
"""

from __future__ import annotations

import os

from app.engine.resources.config import EndpointConfig
from app.llm.anthropic import ANTHROPIC_BASE_URL, AnthropicClient
from app.llm.errors import LLMConfigError, MissingAPIKeyError
from app.llm.openai import OPENAI_BASE_URL, OpenAIClient
from app.llm.simulated import SimulatedClient

DEFAULT_KEY_ENV = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}


def openai_client(alias: str, endpoint: EndpointConfig) -> OpenAIClient:
    """OpenAI's API (``base_url`` defaults to ``https://api.openai.com/v1``); a key is required."""
    return OpenAIClient(
        endpoint.model,
        base_url=endpoint.base_url or OPENAI_BASE_URL,
        api_key=required_api_key(alias, endpoint),
        alias=alias,
        provider="openai",
        # OpenAI's reasoning models reject the older max_tokens field
        max_tokens_field="max_completion_tokens",
    )


def openai_compatible_client(alias: str, endpoint: EndpointConfig) -> OpenAIClient:
    """An OpenAI-compatible server (vLLM, TGI, Ollama, llama.cpp): ``base_url`` is required.

    A key is sent only when ``api_key_env`` is configured (and then it must be set).
    """
    if not endpoint.base_url:
        raise LLMConfigError(
            f"endpoint {alias!r} (provider openai-compatible) needs a base_url, "
            "e.g. http://localhost:8000/v1"
        )
    return OpenAIClient(
        endpoint.model,
        base_url=endpoint.base_url,
        api_key=required_api_key(alias, endpoint) if endpoint.api_key_env else None,
        alias=alias,
        provider="openai-compatible",
    )


def anthropic_client(alias: str, endpoint: EndpointConfig) -> AnthropicClient:
    """Anthropic's Messages API (``base_url`` defaults to ``https://api.anthropic.com``)."""
    return AnthropicClient(
        endpoint.model,
        api_key=required_api_key(alias, endpoint),
        base_url=endpoint.base_url or ANTHROPIC_BASE_URL,
        alias=alias,
    )


def simulated_client(alias: str, endpoint: EndpointConfig) -> SimulatedClient:
    """The deterministic offline model (:mod:`app.llm.simulated`)."""
    return SimulatedClient(endpoint.model, latency_s=endpoint.simulated_latency_s)


def required_api_key(alias: str, endpoint: EndpointConfig) -> str:
    """The key in the endpoint's ``api_key_env`` variable, or ``MissingAPIKeyError``."""
    env_var = endpoint.api_key_env or DEFAULT_KEY_ENV.get(endpoint.provider)
    key = os.environ.get(env_var) if env_var else None
    if not key:
        raise MissingAPIKeyError(alias, endpoint.provider, env_var or "named by api_key_env")
    return key
