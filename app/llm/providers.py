"""The client factories registered as entry points in group ``inf_engine.providers``.

Each is a :data:`~app.engine.llm.ClientFactory`: ``(alias, endpoint) -> LLMClient``. API keys
are read from the environment variable the endpoint names (``api_key_env``); OpenAI and
Azure OpenAI and Anthropic default to ``OPENAI_API_KEY``, ``AZURE_OPENAI_API_KEY`` and
``ANTHROPIC_API_KEY``. Every HTTP provider adds the endpoint's extra headers (``headers``, and
``headers_env`` for secrets) to each call, after its own.

>>> from app.engine.resources.config import EndpointConfig
>>> simulated_client("fast", EndpointConfig(provider="simulated", model="sim-1")).model
'sim-1'
"""

from __future__ import annotations

import os
from dataclasses import replace
from urllib.parse import quote

from app.engine.resources.config import EndpointConfig
from app.llm.anthropic import ANTHROPIC_BASE_URL, AnthropicClient
from app.llm.capabilities import DROPPED, Family, model_family
from app.llm.errors import LLMConfigError, MissingAPIKeyError
from app.llm.openai import OPENAI_BASE_URL, OpenAIClient
from app.llm.openai_body import BodyShape
from app.llm.simulated import SimulatedClient

DEFAULT_KEY_ENV = {
    "openai": "OPENAI_API_KEY",
    "azure": "AZURE_OPENAI_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
}
AZURE_API_VERSION = "2024-10-21"


def openai_client(alias: str, endpoint: EndpointConfig) -> OpenAIClient:
    """OpenAI's API (``base_url`` defaults to ``https://api.openai.com/v1``); a key is required.

    Bodies carry ``max_completion_tokens``; reasoning models (o-series, GPT-5, or
    ``model_family: reasoning``) get no ``temperature``/``stop`` and refuse sampling fields.
    """
    family = endpoint.model_family or model_family(endpoint.model)
    return OpenAIClient(
        endpoint.model,
        base_url=endpoint.base_url or OPENAI_BASE_URL,
        api_key=required_api_key(alias, endpoint),
        alias=alias,
        provider="openai",
        shape=openai_shape(family),
        refuse=("openai", family),
        headers=extra_headers(alias, endpoint),
    )


def azure_client(alias: str, endpoint: EndpointConfig) -> OpenAIClient:
    """Azure OpenAI: ``{base_url}/openai/deployments/{deployment}/chat/completions``.

    ``base_url`` is the resource (``https://NAME.openai.azure.com``); ``deployment`` defaults
    to ``model``, ``api_version`` to :data:`AZURE_API_VERSION`; the key goes in ``api-key``.
    """
    if not endpoint.base_url:
        raise LLMConfigError(
            f"endpoint {alias!r} (provider azure) needs a base_url, "
            "e.g. https://my-resource.openai.azure.com"
        )
    family = endpoint.model_family or model_family(endpoint.model)
    return OpenAIClient(
        endpoint.model,
        base_url=endpoint.base_url,
        alias=alias,
        provider="azure",
        shape=replace(openai_shape(family), send_model=False),
        refuse=("openai", family),
        url=azure_url(endpoint),
        headers={"api-key": required_api_key(alias, endpoint), **extra_headers(alias, endpoint)},
    )


def azure_url(endpoint: EndpointConfig) -> str:
    """The deployment's chat completions URL, with its ``api-version``.

    >>> azure_url(EndpointConfig(provider="azure", model="gpt-4o", base_url="https://r.example/"))
    'https://r.example/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21'
    """
    base = (endpoint.base_url or "").rstrip("/")
    deployment = quote(endpoint.deployment or endpoint.model, safe="")
    version = quote(endpoint.api_version or AZURE_API_VERSION, safe="")
    return f"{base}/openai/deployments/{deployment}/chat/completions?api-version={version}"


def openai_shape(family: Family) -> BodyShape:
    """OpenAI's body: ``max_completion_tokens``, and what its reasoning models cannot take."""
    drop = DROPPED.get(("openai", family), frozenset())
    return BodyShape(max_tokens_field="max_completion_tokens", drop=drop)


def openai_compatible_client(alias: str, endpoint: EndpointConfig) -> OpenAIClient:
    """An OpenAI-compatible server (vLLM, TGI, Ollama, llama.cpp): ``base_url`` is required.

    A key is sent only when ``api_key_env`` is configured (and then it must be set). Every
    field is passed through: the server decides what it accepts.
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
        headers=extra_headers(alias, endpoint),
    )


def anthropic_client(alias: str, endpoint: EndpointConfig) -> AnthropicClient:
    """Anthropic's Messages API (``base_url`` defaults to ``https://api.anthropic.com``)."""
    return AnthropicClient(
        endpoint.model,
        api_key=required_api_key(alias, endpoint),
        base_url=endpoint.base_url or ANTHROPIC_BASE_URL,
        alias=alias,
        headers=extra_headers(alias, endpoint),
    )


def simulated_client(alias: str, endpoint: EndpointConfig) -> SimulatedClient:
    """The deterministic offline model (:mod:`app.llm.simulated`)."""
    return SimulatedClient(endpoint.model, latency_s=endpoint.simulated_latency_s)


def extra_headers(alias: str, endpoint: EndpointConfig) -> dict[str, str]:
    """The endpoint's ``headers``, then ``headers_env`` read from the environment now.

    >>> extra_headers("a", EndpointConfig(provider="openai", model="m", headers={"X-Team": "ml"}))
    {'X-Team': 'ml'}
    """
    headers = dict(endpoint.headers)
    for name, env_var in endpoint.headers_env.items():
        value = os.environ.get(env_var)
        if not value:
            raise LLMConfigError(
                f"endpoint {alias!r}: header {name!r} needs the environment variable {env_var}"
            )
        headers[name] = value
    return headers


def required_api_key(alias: str, endpoint: EndpointConfig) -> str:
    """The key in the endpoint's ``api_key_env`` variable, or ``MissingAPIKeyError``."""
    env_var = endpoint.api_key_env or DEFAULT_KEY_ENV.get(endpoint.provider)
    key = os.environ.get(env_var) if env_var else None
    if not key:
        raise MissingAPIKeyError(alias, endpoint.provider, env_var or "named by api_key_env")
    return key
