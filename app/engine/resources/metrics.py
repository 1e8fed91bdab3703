"""Per-alias call statistics, kept in the engine so the library reports them without a server."""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

LATENCY_WINDOW = 10_000
# Upper bounds (seconds) of the latency histogram; slow models and long generations reach
# minutes, so the buckets do too (quantiles stay finite when a backlog forms).
LATENCY_BUCKETS_S = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
)  # fmt: skip


def percentile(sorted_values: list[float], q: float) -> float | None:
    """Nearest-rank percentile of already sorted values (``None`` when empty).

    >>> percentile([1.0, 2.0, 3.0, 4.0], 0.5)
    2.0
    """
    if not sorted_values:
        return None
    rank = max(0, min(len(sorted_values) - 1, round(q * len(sorted_values) + 0.5) - 1))
    return sorted_values[rank]


@dataclass(slots=True)
class Histogram:
    """Counts of observations per bucket (``le`` upper bounds, then +Inf) and their sum.

    >>> h = Histogram((1.0, 2.0)); h.observe(0.5); h.observe(1.0); h.observe(3.0)
    >>> h.counts, h.total
    ([2, 0, 1], 4.5)
    """

    bounds: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0

    def __post_init__(self) -> None:
        self.counts = self.counts or [0] * (len(self.bounds) + 1)

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value


@dataclass(slots=True)
class EndpointMetrics:
    """Requests, errors by class, retries, latency percentiles, tokens and cost of one alias.

    Latency percentiles cover the most recent ``LATENCY_WINDOW`` calls; ``latency_histogram``
    counts every call since the start, for exporters such as Prometheus.
    """

    requests: int = 0
    succeeded: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    status_codes: Counter[int] = field(default_factory=Counter)
    retries: Counter[str] = field(default_factory=Counter)
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCY_WINDOW))
    latency_histogram: Histogram = field(default_factory=lambda: Histogram(LATENCY_BUCKETS_S))
    ledger_hits: int = 0  # calls answered from the response ledger (no request made)
    ledger_misses: int = 0  # ledger lookups that found nothing (the call was made, or failed)

    def ledger(self, hit: bool) -> None:
        if hit:
            self.ledger_hits += 1
        else:
            self.ledger_misses += 1

    def success(self, latency_s: float, input_tokens: int, output_tokens: int, cost: float) -> None:
        self.requests += 1
        self.succeeded += 1
        self.status_codes[200] += 1
        self.latencies.append(latency_s)
        self.latency_histogram.observe(latency_s)
        self.input_tokens += input_tokens
        self.output_tokens += output_tokens
        self.cost += cost

    def failure(self, error_class: str, status_code: int | None, latency_s: float) -> None:
        self.requests += 1
        self.errors[error_class] += 1
        if status_code is not None:
            self.status_codes[status_code] += 1
        self.latencies.append(latency_s)
        self.latency_histogram.observe(latency_s)

    def snapshot(self) -> dict[str, Any]:
        ordered = sorted(self.latencies)
        return {
            "requests": self.requests,
            "succeeded": self.succeeded,
            "errors": dict(self.errors),
            "status_codes": dict(self.status_codes),
            "retries": dict(self.retries),
            "ledger": {"hits": self.ledger_hits, "misses": self.ledger_misses},
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost": self.cost,
            "latency_s": {f"p{int(q * 100)}": percentile(ordered, q) for q in (0.5, 0.9, 0.99)},
        }
