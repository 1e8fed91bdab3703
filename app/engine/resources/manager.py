"""One resource manager per process and configuration: clients, gates and metrics per alias.

Every run, batch and job bound to the same :class:`ResourceConfig` shares one manager, so
concurrency caps and rate budgets hold across all of them (DESIGN §5).

>>> import asyncio
>>> cfg = ResourceConfig.from_dict({"endpoints": {"fast": {"provider": "simulated", "model": "m"}}})
>>> async def demo():
...     return shared_manager(cfg) is shared_manager(cfg)
>>> asyncio.run(demo())
True
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Coroutine, Iterable
from dataclasses import asdict
from typing import Any

from app.engine.clock import Clock, MonotonicClock
from app.engine.errors import LLMCallError, RateLimitedError, error_kind
from app.engine.llm import ClientFactory, LLMClient, LLMResponse, RateLimitInfo
from app.engine.records import LLMUsage
from app.engine.resources.config import EndpointConfig, ResourceConfig
from app.engine.resources.fairness import AGING_S, NO_FLOW, Flow
from app.engine.resources.gate import EndpointGate, Permit
from app.engine.resources.limiter import RateState
from app.engine.resources.metrics import EndpointMetrics
from app.engine.resources.providers import default_client_factory, preload_providers
from app.engine.resources.shared import SharedRateStore, limits_of
from app.engine.resources.sharing import LEASE_TTL_S, SharedAdmission
from app.engine.resources.slice_settings import SliceSettings
from app.engine.resources.slices import SlicedRateStore


class Endpoint:
    """Everything about one alias at run time: config, client, gate, rate state and metrics."""

    def __init__(
        self,
        alias: str,
        config: EndpointConfig,
        client: LLMClient,
        clock: Clock,
        shared: SharedAdmission | None = None,
        aging_s: float = AGING_S,
    ) -> None:
        self.alias = alias
        self.config = config
        self.client = client
        self.clock = clock
        # NOTE: with a shared store, the store learns the rate for every process (its cut on
        # 429s, the stated limits); a local AIMD on top would slow this process down twice.
        self.rate = RateState(
            rpm=config.rpm, tpm=config.tpm, now=clock.now(), adaptive=shared is None
        )
        self.gate = EndpointGate(
            max_concurrent=config.max_concurrent, rate=self.rate, clock=clock, aging_s=aging_s
        )
        self.metrics = EndpointMetrics()
        self.shared = shared

    async def acquire(self, tokens: int, priority: int = 0, flow: Flow = NO_FLOW) -> Permit:
        """A permit from the local gate and, with a shared store, from the store too."""
        permit = await self.gate.acquire(tokens, priority, flow)
        if self.shared is None:
            return permit
        try:
            permit.shared = await self.shared.enter(tokens)
        except BaseException:
            self.gate.release(permit)
            raise
        permit.started_at = self.clock.now()
        return permit

    async def leave_shared(self, permit: Permit) -> None:
        """Hand the call's shared lease back, with its usage and any 429 pause."""
        rest = self.leave_shared_now(permit)
        if rest is not None:
            await rest

    def leave_shared_now(self, permit: Permit) -> Coroutine[Any, Any, None] | None:
        """:meth:`leave_shared`, done at once when the store need not be told; else the
        coroutine that tells it (see :meth:`SharedAdmission.leave_now`)."""
        lease, permit.shared = permit.shared, None
        if lease is None or self.shared is None:
            return None
        return self.shared.leave_now(lease)

    def succeeded(self, permit: Permit, response: LLMResponse) -> LLMUsage:
        """Book a successful call: real token usage, rate recovery, metrics."""
        tokens = response.input_tokens + response.output_tokens
        if permit.shared is not None:
            permit.shared.used_tokens = tokens
            permit.shared.stated = _stated(response.rate_limit)
        now = self.gate.succeeded(permit, tokens, response.rate_limit)
        latency = now - permit.started_at
        cost = self.config.cost(response.input_tokens, response.output_tokens)
        self.metrics.success(latency, response.input_tokens, response.output_tokens, cost)
        return LLMUsage(
            alias=self.alias,
            model=response.model or self.config.model,
            input_tokens=response.input_tokens,
            output_tokens=response.output_tokens,
            latency_s=latency,
            finish_reason=response.finish_reason,
            cost=cost,
            cached_tokens=response.cached_tokens,
        )

    def failed(self, permit: Permit, error: LLMCallError) -> None:
        """Book a failed call; a 429 lowers the rate and pauses the endpoint."""
        if isinstance(error, RateLimitedError):
            self.gate.on_rate_limited(permit, error.retry_after, error.rate_limit)
            if permit.shared is not None:
                permit.shared.retry_after_s = error.retry_after
                permit.shared.rate_limited = True
                permit.shared.stated = _stated(error.rate_limit)
        self.gate.release(permit)
        self.metrics.failure(
            error_kind(error), error.status_code, self.clock.now() - permit.started_at
        )

    def release(self, permit: Permit) -> None:
        self.gate.release(permit)

    def snapshot(self) -> dict[str, Any]:
        """Live state for dashboards and ``GET /v1/endpoints`` (never secrets)."""
        return {
            "alias": self.alias,
            "provider": self.config.provider,
            "model": self.config.model,
            "max_concurrent": self.config.max_concurrent,
            "limits": self.gate.snapshot(),
            "gate": asdict(self.gate.stats),
            "metrics": self.metrics.snapshot(),
        }


def _stated(info: RateLimitInfo | None) -> tuple[int | None, int | None] | None:
    """The (requests, tokens) per minute a provider's headers state, if any."""
    if info is None or (info.limit_requests is None and info.limit_tokens is None):
        return None
    return info.limit_requests, info.limit_tokens


class ResourceManager:
    """Builds and owns the :class:`Endpoint` of each alias, lazily, for one event loop.

    With ``shared_store``, every call is also admitted by the store, so that each alias's
    limits hold across all processes using it; without, they hold within this process.
    ``aging_s`` is how much longer a call must wait to overtake one of a unit lower priority
    value (:mod:`app.engine.resources.fairness`).
    ``shared_lease_s`` is how long a slot of a process that died mid-call stays taken.
    ``shared_slices``, when given, takes the store's budget in slices and reuses its slot
    leases (:mod:`app.engine.resources.slices`): fewer store round trips per call, within a
    documented overshoot.
    """

    def __init__(
        self,
        config: ResourceConfig,
        *,
        client_factory: ClientFactory | None = None,
        clock: Clock | None = None,
        shared_store: SharedRateStore | None = None,
        aging_s: float = AGING_S,
        shared_lease_s: float = LEASE_TTL_S,
        shared_slices: SliceSettings | None = None,
    ) -> None:
        self.config = config
        self.aging_s = aging_s
        self._factory = client_factory or default_client_factory
        self._clock = clock or MonotonicClock()
        self._endpoints: dict[str, Endpoint] = {}
        self._limits = limits_of(config) if shared_store is not None else {}
        if shared_store is not None and shared_slices is not None:
            shared_store = SlicedRateStore(shared_store, self._limits, shared_slices, self._clock)
        self._store = shared_store
        preload_providers(config)
        self._lease_s = shared_lease_s

    def endpoint(self, alias: str) -> Endpoint:
        """The runtime of ``alias`` (``ConfigError`` if it is not configured)."""
        found = self._endpoints.get(alias)
        if found is None:
            config = self.config.endpoint(alias)
            client = self._factory(alias, config)
            admission = self._admission(alias)
            found = Endpoint(alias, config, client, self._clock, admission, self.aging_s)
            self._endpoints[alias] = found
        return found

    def _admission(self, alias: str) -> SharedAdmission | None:
        if self._store is None:
            return None
        return SharedAdmission(self._store, alias, self._limits[alias], ttl_s=self._lease_s)

    def endpoints(self) -> Iterable[Endpoint]:
        return list(self._endpoints.values())

    def snapshot(self) -> dict[str, dict[str, Any]]:
        return {alias: ep.snapshot() for alias, ep in self._endpoints.items()}

    async def aclose(self) -> None:
        """Close every client. The manager can be used again afterwards (clients are rebuilt)."""
        endpoints, self._endpoints = list(self._endpoints.values()), {}
        await asyncio.gather(*(ep.client.aclose() for ep in endpoints))
        if isinstance(self._store, SlicedRateStore):
            await self._store.release_idle()

    async def __aenter__(self) -> ResourceManager:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


_shared: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, ResourceManager]] = (
    weakref.WeakKeyDictionary()
)


def shared_manager(config: ResourceConfig) -> ResourceManager:
    """The process's manager for ``config`` on the running loop (created on first use)."""
    managers = _shared.setdefault(asyncio.get_running_loop(), {})
    key = config.fingerprint
    if key not in managers:
        managers[key] = ResourceManager(config)
    return managers[key]


async def close_shared_managers() -> None:
    """Close the clients of every shared manager of the running loop."""
    managers = _shared.pop(asyncio.get_running_loop(), {})
    await asyncio.gather(*(manager.aclose() for manager in managers.values()))
