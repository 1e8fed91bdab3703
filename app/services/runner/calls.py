"""Which step a model call belongs to, so that a step counts as running once its first call
has begun (its endpoint gave it a concurrency slot and rate budget), not while it waits.

The engine calls a model through the client of its endpoint, after the endpoint's gate let the
call go. :func:`watched_clients` wraps every client of a :class:`ResourceManager` so that each
call first tells the step whose task made it (:func:`on_call`, set by the step's task and
inherited by the engine's node tasks it starts). Calls outside any step (``POST /v1/runs``)
tell nobody.

    resources = ResourceManager(config, client_factory=watched_clients())
    on_call(lambda: print("this step's first call began"))
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar

from app.engine import LLMClient, LLMRequest, LLMResponse
from app.engine.llm import ClientFactory
from app.engine.resources.config import EndpointConfig
from app.engine.resources.providers import default_client_factory

_call_began: ContextVar[Callable[[], None] | None] = ContextVar("call_began", default=None)


def on_call(began: Callable[[], None]) -> None:
    """In the current task and the tasks it starts: call ``began()`` as each model call
    begins (it must be cheap and idempotent)."""
    _call_began.set(began)


class WatchedClient:
    """An :class:`LLMClient` that reports each call's start, then makes it."""

    def __init__(self, client: LLMClient) -> None:
        self.client = client

    async def complete(self, request: LLMRequest) -> LLMResponse:
        began = _call_began.get()
        if began is not None:
            began()
        return await self.client.complete(request)

    async def aclose(self) -> None:
        await self.client.aclose()


def watched_clients(factory: ClientFactory = default_client_factory) -> ClientFactory:
    """A client factory whose clients report each call's start (see the module docstring)."""

    def build(alias: str, config: EndpointConfig) -> LLMClient:
        return WatchedClient(factory(alias, config))

    return build
