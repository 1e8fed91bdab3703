"""Metrics read at scrape time from live objects: model endpoints and database pools.

The engine keeps its own per-alias counters and limiter state (it imports no metrics library);
:class:`EndpointCollector` turns them into Prometheus families when ``/metrics`` is scraped,
so model calls pay nothing for being measured twice.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from app.engine import ResourceManager
from app.engine.resources.manager import Endpoint
from app.engine.resources.shared import SharedRateStore
from app.services.limiting.fallback import FallbackRateStore
from app.services.observability.limiter_metrics import FallbackCollector
from app.services.observability.metrics import ServiceMetrics, buckets

HEALTHY, DEGRADED, PAUSED = 0, 1, 2
RESOURCES = (("requests", "rpm"), ("tokens", "tpm"))


class EndpointCollector:
    """``inf_llm_*``, ``inf_ledger_lookups_total``, ``inf_ratelimit_*``, ``inf_retries_total``
    and ``inf_endpoint_state`` of
    every alias this process has called."""

    def __init__(self, resources: ResourceManager, process: str) -> None:
        self.resources = resources
        self.process = process

    def collect(self) -> Iterator[Metric]:
        endpoints = list(self.resources.endpoints())
        yield from _calls(endpoints)
        yield from _ledger(endpoints)
        yield from _limits(endpoints, self.process)


def _calls(endpoints: list[Endpoint]) -> Iterator[Metric]:
    requests = CounterMetricFamily(
        "inf_llm_requests",
        "Model calls by HTTP status ('none': no answer).",
        labels=["alias", "model", "status_code"],
    )
    latency = HistogramMetricFamily(
        "inf_llm_request_duration_seconds", "Model call latency.", labels=["alias", "model"]
    )
    tokens = CounterMetricFamily(
        "inf_llm_tokens", "Tokens by direction.", labels=["alias", "model", "direction"]
    )
    cost = CounterMetricFamily(
        "inf_llm_cost", "Cost in the currency of the price table.", labels=["alias", "model"]
    )
    retries = CounterMetricFamily(
        "inf_retries", "Model calls retried, by reason.", labels=["alias", "reason"]
    )
    for ep in endpoints:
        names, metrics = [ep.alias, ep.config.model], ep.metrics
        for code, count in _by_status(ep).items():
            requests.add_metric([*names, code], count)
        histogram = metrics.latency_histogram
        latency.add_metric(names, buckets(histogram), histogram.total)
        tokens.add_metric([*names, "input"], metrics.input_tokens)
        tokens.add_metric([*names, "output"], metrics.output_tokens)
        cost.add_metric(names, metrics.cost)
        for reason, count in metrics.retries.items():
            retries.add_metric([ep.alias, reason], count)
    return iter((requests, latency, tokens, cost, retries))


def _ledger(endpoints: list[Endpoint]) -> Iterator[Metric]:
    lookups = CounterMetricFamily(
        "inf_ledger_lookups",
        "Response ledger lookups of model calls: 'hit' answered from the ledger, no call made.",
        labels=["alias", "status"],
    )
    for ep in endpoints:
        lookups.add_metric([ep.alias, "hit"], ep.metrics.ledger_hits)
        lookups.add_metric([ep.alias, "miss"], ep.metrics.ledger_misses)
    yield lookups


def _by_status(endpoint: Endpoint) -> dict[str, int]:
    metrics = endpoint.metrics
    counts = {str(code): count for code, count in metrics.status_codes.items()}
    unanswered = metrics.requests - sum(metrics.status_codes.values())
    if unanswered:
        counts["none"] = unanswered
    return counts


def _limits(endpoints: list[Endpoint], process: str) -> Iterator[Metric]:
    in_flight = GaugeMetricFamily("inf_llm_in_flight", "Model calls in flight.", labels=["alias"])
    waiting = GaugeMetricFamily(
        "inf_llm_waiting", "Model calls waiting for a slot or rate budget.", labels=["alias"]
    )
    limit = GaugeMetricFamily(
        "inf_ratelimit_limit",
        "Effective rate limit per minute (lowered after 429s).",
        labels=["alias", "resource", "process"],
    )
    remaining = GaugeMetricFamily(
        "inf_ratelimit_remaining",
        "Budget that could be spent right now.",
        labels=["alias", "resource", "process"],
    )
    throttled = CounterMetricFamily(
        "inf_ratelimit_throttled", "Calls held back, by reason.", labels=["alias", "reason"]
    )
    state = GaugeMetricFamily(
        "inf_endpoint_state",
        "0 healthy, 1 degraded (rate lowered), 2 paused (Retry-After).",
        labels=["alias", "process"],
    )
    for ep in endpoints:
        snapshot, stats = ep.gate.snapshot(), ep.gate.stats
        in_flight.add_metric([ep.alias], ep.gate.in_flight)
        waiting.add_metric([ep.alias], ep.gate.waiting)
        for resource, key in RESOURCES:
            effective, left = snapshot[f"effective_{key}"], snapshot[f"remaining_{resource}"]
            if effective is not None:
                limit.add_metric([ep.alias, resource, process], effective)
            if left is not None:
                remaining.add_metric([ep.alias, resource, process], left)
        throttled.add_metric([ep.alias, "rate"], stats.waited_for_rate)
        throttled.add_metric([ep.alias, "concurrency"], stats.waited_for_slot)
        throttled.add_metric([ep.alias, "upstream_429"], ep.metrics.status_codes.get(429, 0))
        state.add_metric([ep.alias, process], _state(snapshot))
    return iter((in_flight, waiting, limit, remaining, throttled, state))


def _state(snapshot: dict[str, float | None]) -> int:
    if snapshot["blocked_for_s"]:
        return PAUSED
    for _, key in RESOURCES:
        configured, effective = snapshot[key], snapshot[f"effective_{key}"]
        if configured is not None and effective is not None and effective < configured:
            return DEGRADED
    return HEALTHY


class PoolCollector:
    """``inf_db_pool_connections{process,state}``: connections in use and idle."""

    def __init__(self, engine: AsyncEngine, process: str) -> None:
        self.pool = engine.sync_engine.pool
        self.process = process

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "inf_db_pool_connections",
            "Database connections of this process's pool.",
            labels=["process", "state"],
        )
        checked_out = getattr(self.pool, "checkedout", None)
        checked_in = getattr(self.pool, "checkedin", None)
        if checked_out is not None and checked_in is not None:
            family.add_metric([self.process, "in_use"], checked_out())
            family.add_metric([self.process, "idle"], checked_in())
        yield family


def process_metrics(
    process: str,
    resources: ResourceManager,
    engine: AsyncEngine,
    store: SharedRateStore | None = None,
) -> ServiceMetrics:
    """The metrics of one service process, its endpoints', database pool's and shared
    limiter's fallback included."""
    metrics = ServiceMetrics(process)
    metrics.add(EndpointCollector(resources, process))
    metrics.add(PoolCollector(engine, process))
    if isinstance(store, FallbackRateStore):
        metrics.add(FallbackCollector(store, process))
    return metrics
