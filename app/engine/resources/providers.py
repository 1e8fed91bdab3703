"""Find the client factory of a provider: entry points in group ``inf_engine.providers``.

The engine knows providers only by name; ``app.llm`` (or a plugin) registers factories,
which keeps the engine free of HTTP code. Factories are loaded once per process, when a
configuration naming them is bound (:func:`preload_providers`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from functools import cache
from importlib.metadata import entry_points
from typing import cast

from app.engine.errors import ConfigError
from app.engine.llm import ClientFactory, LLMClient
from app.engine.resources.config import EndpointConfig, ResourceConfig

GROUP = "inf_engine.providers"
FIELDS_GROUP = "inf_engine.provider_fields"
"""``provider -> (EndpointConfig) -> fields it refuses``; a provider not listed refuses none."""


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


def preload_providers(config: ResourceConfig) -> None:
    """Import the factory of every provider ``config`` names, now rather than on first call.

    Called when a configuration is bound (:class:`ResourceManager`), so the first call of a
    process does not pay for the provider's imports (aiohttp and friends) on the event loop.
    A provider with no client installed is reported by its first call, as before.
    """
    for provider in sorted({endpoint.provider for endpoint in config.endpoints.values()}):
        try:
            provider_factory(provider)
        except ConfigError:
            continue


@cache
def _refusals_of(provider: str) -> Callable[[EndpointConfig], Collection[str]] | None:
    found = entry_points(group=FIELDS_GROUP, name=provider)
    if not found:
        return None
    return cast(Callable[[EndpointConfig], Collection[str]], next(iter(found)).load())


def refused_fields(config: ResourceConfig) -> dict[str, frozenset[str]]:
    """Alias -> the request fields its provider refuses (``n`` stands for ``n`` > 1).

    Passed as ``aliases`` to ``load_graph``, it also makes an upload that sets such a field
    fail, naming the field.

    >>> sim = {"provider": "simulated", "model": "m"}
    >>> refused_fields(ResourceConfig.from_dict({"endpoints": {"s": sim}}))
    {'s': frozenset()}
    """
    found = {}
    for alias, endpoint in config.endpoints.items():
        refuses = _refusals_of(endpoint.provider)
        found[alias] = frozenset(refuses(endpoint)) if refuses is not None else frozenset()
    return found
