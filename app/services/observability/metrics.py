"""The service's Prometheus metrics (DESIGN §9): every family defined once, here.

Each process has its own :class:`ServiceMetrics` on a registry of its own. The HTTP process
answers ``GET /metrics`` with its families merged with those of its job-runner process (see
:func:`merge_families`): counters and histograms of the same name and labels add up; gauges
that describe one process's own state carry a ``process`` label, so they never collide.

Labels are bounded: ``alias``, ``model``, ``op``, ``status``, ``state``, ``role``,
``status_code``, ``reason``, ``route`` -- never job ids, tenants or prompts.

    metrics = ServiceMetrics("api")
    metrics.jobs_submitted.inc()
    text = metrics.exposition()
"""

from __future__ import annotations

import collections
import itertools
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from app.engine import NodeRecord
from app.engine.resources.metrics import LATENCY_BUCKETS_S
from app.engine.resources.metrics import Histogram as EngineHistogram
from app.lifecycle import JobStatus, OptimizationState

# No ``*_created`` series: they would double the number of series for nothing.
disable_created_metrics()  # type: ignore[no-untyped-call]

JOB_STATUSES = tuple(JobStatus)
QUEUE_BUCKETS_S = (0.001, *LATENCY_BUCKETS_S)
FAST_BUCKETS_S = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25)
WRITE_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
HTTP_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ServiceMetrics:
    """The instruments of one process; ``process`` is ``api`` or ``runner``."""

    def __init__(self, process: str) -> None:
        self.process = process
        self.registry = CollectorRegistry(auto_describe=True)
        self._jobs(self.registry)
        self._nodes(self.registry)
        self._storage(self.registry)
        self._service(self.registry)

    def _jobs(self, registry: CollectorRegistry) -> None:
        self.jobs_submitted = Counter(
            "inf_jobs_submitted", "Jobs accepted by the API.", registry=registry
        )
        self.jobs_finished = Counter(
            "inf_jobs_finished", "Jobs that ended, by final status.", ["status"], registry=registry
        )
        self.items_finished = Counter(
            "inf_items_finished", "Job items that ended, by status.", ["status"], registry=registry
        )
        self.jobs_by_status = Gauge(
            "inf_jobs", "Jobs in the database by status.", ["status"], registry=registry
        )
        self.optimizations_by_state = Gauge(
            "inf_optimization_runs",
            "Optimization runs in the database by state.",
            ["state"],
            registry=registry,
        )
        self.optimization_calls = Counter(
            "inf_optimization_calls",
            "Model calls of optimization runs' finished trainer steps, by role.",
            ["role"],
            registry=registry,
        )

    def _nodes(self, registry: CollectorRegistry) -> None:
        self.nodes = NodeMetrics()
        registry.register(self.nodes)

    def _storage(self, registry: CollectorRegistry) -> None:
        self.checkpoint_write = Histogram(
            "inf_checkpoint_write_seconds",
            "Time to write one batch of node results, items and events (one transaction).",
            buckets=WRITE_BUCKETS_S,
            registry=registry,
        )
        self.checkpoint_rows = Counter(
            "inf_checkpoint_rows", "Rows written by result batches.", registry=registry
        )
        self.result_queue = Gauge(
            "inf_result_queue_rows",
            "Rows waiting for the result writer, per process.",
            ["process"],
            registry=registry,
        )
        self.result_queue_peak = Gauge(
            "inf_result_queue_peak_rows",
            "The most rows the result writer has held since the process started.",
            ["process"],
            registry=registry,
        )

    def _service(self, registry: CollectorRegistry) -> None:
        self.webhook_attempts = Counter(
            "inf_webhook_attempts",
            "Webhook deliveries tried, by outcome.",
            ["outcome"],
            registry=registry,
        )
        self.retention_deleted = Counter(
            "inf_retention_deleted_jobs", "Finished jobs deleted by retention.", registry=registry
        )
        self.event_streams = Gauge(
            "inf_event_streams", "Server-Sent Event streams open.", registry=registry
        )
        self.runner_up = Gauge(
            "inf_runner_up",
            "1 when the job runner answered the last scrape; 0 when it is down, restarting or "
            "stalled (its own families are then left out).",
            registry=registry,
        )
        self.runner_deaths = Counter(
            "inf_runner_deaths",
            "Runner processes that died unexpectedly (each is restarted).",
            registry=registry,
        )
        self.http_requests = Counter(
            "inf_http_requests",
            "HTTP requests answered.",
            ["method", "route", "status_code"],
            registry=registry,
        )
        self.http_duration = Histogram(
            "inf_http_request_duration_seconds",
            "Time to answer an HTTP request.",
            ["method", "route"],
            buckets=HTTP_BUCKETS_S,
            registry=registry,
        )

    def add(self, collector: Collector) -> None:
        """Export what ``collector`` reads at scrape time (endpoints, pools, queues)."""
        self.registry.register(collector)

    def exposition(self) -> str:
        return generate_latest(self.registry).decode()

    def families(self) -> list[Metric]:
        """Every family with its samples now (what another process merges with its own)."""
        return list(self.registry.collect())

    def set_job_counts(self, counts: dict[str, int]) -> None:
        for status in JOB_STATUSES:
            self.jobs_by_status.labels(status).set(counts.get(status, 0))

    def set_optimization_counts(self, counts: dict[str, int]) -> None:
        for state in OptimizationState:
            self.optimizations_by_state.labels(state).set(counts.get(state, 0))


class NodeMetrics:
    """The engine :class:`~app.engine.Observer` behind ``inf_node_runs_total``,
    ``inf_node_duration_seconds``, ``inf_queue_wait_seconds`` and
    ``inf_scheduler_overhead_seconds``.

    It runs once per node on the runner's hot path, so it counts into plain counters and
    histograms (no locks, no label lookups) that become metric families when scraped.
    """

    def __init__(self) -> None:
        self.runs: collections.Counter[tuple[str, str]] = collections.Counter()
        self.durations: dict[str, EngineHistogram] = {}
        self.queue_waits: dict[str, EngineHistogram] = {}
        self.overhead = EngineHistogram(FAST_BUCKETS_S)

    def node_finished(self, run: str, record: NodeRecord, op: str, alias: str | None) -> None:
        if record.restored:
            return
        self.runs[op, record.status.value] += 1
        duration = record.duration_s
        if duration is not None:
            _histogram(self.durations, op, LATENCY_BUCKETS_S).observe(duration)
        usage = record.usage
        if usage is None or alias is None:
            return
        _histogram(self.queue_waits, alias, QUEUE_BUCKETS_S).observe(usage.queued_s)
        if duration is not None and record.attempts == 1:
            self.overhead.observe(max(0.0, duration - usage.latency_s - usage.queued_s))

    def collect(self) -> Iterator[Metric]:
        runs = CounterMetricFamily(
            "inf_node_runs", "Graph nodes that ended, by op and status.", labels=["op", "status"]
        )
        for labels, count in self.runs.items():
            runs.add_metric(list(labels), count)
        yield runs
        yield histogram_family(
            "inf_node_duration_seconds",
            "Time from a node's start to its end, by op.",
            "op",
            self.durations,
        )
        yield histogram_family(
            "inf_queue_wait_seconds",
            "Time a model call waited for a concurrency slot and rate budget, by alias.",
            "alias",
            self.queue_waits,
        )
        overhead = HistogramMetricFamily(
            "inf_scheduler_overhead_seconds",
            "Engine time around a single-attempt model call: the node's duration minus the "
            "call's latency and queue wait.",
        )
        overhead.add_metric([], buckets(self.overhead), self.overhead.total)
        yield overhead


def _histogram(
    by_label: dict[str, EngineHistogram], label: str, bounds: tuple[float, ...]
) -> EngineHistogram:
    found = by_label.get(label)
    if found is None:
        found = by_label[label] = EngineHistogram(bounds)
    return found


def histogram_family(
    name: str, documentation: str, label: str, by_label: dict[str, EngineHistogram]
) -> HistogramMetricFamily:
    """One histogram family with a series per label value."""
    family = HistogramMetricFamily(name, documentation, labels=[label])
    for value, histogram in by_label.items():
        family.add_metric([value], buckets(histogram), histogram.total)
    return family


def buckets(histogram: EngineHistogram) -> list[tuple[str, float]]:
    """Cumulative ``(le, count)`` pairs of an engine histogram, as Prometheus wants them."""
    bounds = [*map(str, histogram.bounds), "+Inf"]
    return list(zip(bounds, itertools.accumulate(histogram.counts), strict=True))


# -- one exposition from several processes --------------------------------------------------


def merge_families(groups: Iterable[Iterable[Metric]]) -> bytes:
    """One Prometheus text exposition from several processes' families: families of the same
    name are joined and samples with the same name and labels added up.

    Families travel between processes as objects (pickled), not as text: parsing an
    exposition costs milliseconds on the event loop that also answers status polls.
    """
    families: dict[str, Metric] = {}
    for group in groups:
        for family in group:
            known = families.get(family.name)
            if known is None:
                families[family.name] = family
            else:
                known.samples = _summed([*known.samples, *family.samples])
    return generate_latest(_Fixed(list(families.values())))


def _summed(samples: list[Any]) -> list[Any]:
    totals: dict[tuple[str, tuple[tuple[str, str], ...]], Any] = {}
    for sample in samples:
        key = (sample.name, tuple(sorted(sample.labels.items())))
        known = totals.get(key)
        totals[key] = sample if known is None else known._replace(value=known.value + sample.value)
    return list(totals.values())


class _Fixed:
    """A collector of already-built families (what ``generate_latest`` renders)."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)
