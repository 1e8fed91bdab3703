"""In-process fakes for tests and offline examples of the engine itself.

:class:`ScriptedLLM` stands in for a provider (not for engine code): it answers each
request with a function of the request, can fail on cue, and counts concurrency.

>>> import asyncio
>>> llm = ScriptedLLM(lambda request: request.prompt.upper())
>>> asyncio.run(llm.complete(LLMRequest("m", "", "hi"))).text
'HI'
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from app.engine.errors import LLMCallError
from app.engine.llm import LLMClient, LLMRequest, LLMResponse
from app.engine.resources.config import EndpointConfig, ResourceConfig
from app.engine.resources.manager import ResourceManager
from app.engine.resources.shared import SharedRateStore

Reply = str | LLMCallError | LLMResponse
Script = Callable[[LLMRequest], Reply]


@dataclass
class ScriptedLLM:
    """A provider whose answer is ``script(request)``; exceptions returned are raised."""

    script: Script = field(default=lambda request: f"echo: {request.prompt}")
    latency_s: float = 0.0
    calls: list[LLMRequest] = field(default_factory=list)
    in_flight: int = 0
    peak_in_flight: int = 0

    async def complete(self, request: LLMRequest) -> LLMResponse:
        self.calls.append(request)
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.latency_s)
            reply = self.script(request)
        finally:
            self.in_flight -= 1
        if isinstance(reply, LLMCallError):
            raise reply
        if isinstance(reply, LLMResponse):
            return reply
        return LLMResponse(reply, len(request.prompt) // 4, len(reply) // 4, "stop", request.model)

    async def aclose(self) -> None:
        return None


def scripted_manager(
    clients: dict[str, ScriptedLLM], shared_store: SharedRateStore | None = None, **endpoint: Any
) -> ResourceManager:
    """A resource manager whose aliases are served by the given scripted clients.

    ``endpoint`` sets :class:`EndpointConfig` fields shared by every alias; ``shared_store``
    admits every call through that store as well.
    """
    settings = {"provider": "simulated", "model": "scripted", **endpoint}
    config = ResourceConfig(endpoints={a: EndpointConfig(**settings) for a in clients})

    def factory(alias: str, _: EndpointConfig) -> LLMClient:
        return clients[alias]

    return ResourceManager(config, client_factory=factory, shared_store=shared_store)
