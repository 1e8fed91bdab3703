"""Find the client factory of a provider: entry points in group ``inf_engine.providers``.

The engine knows providers only by name; ``app.llm`` (or a plugin) registers factories,
which keeps the engine free of HTTP code.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points
from typing import cast

from app.engine.errors import ConfigError
from app.engine.llm import ClientFactory, LLMClient
from app.engine.resources.config import EndpointConfig

GROUP = "inf_engine.providers"


@cache
def provider_factory(provider: str) -> ClientFactory:
    """The registered factory for ``provider`` (``ConfigError`` if none is installed)."""
    found = entry_points(group=GROUP, name=provider)
    if not found:
        raise ConfigError(
            f"no client installed for provider {provider!r} (entry point group {GROUP})"
        )
    return cast(ClientFactory, next(iter(found)).load())


def default_client_factory(alias: str, endpoint: EndpointConfig) -> LLMClient:
    """Build the client of an alias from its provider's registered factory."""
    return provider_factory(endpoint.provider)(alias, endpoint)
