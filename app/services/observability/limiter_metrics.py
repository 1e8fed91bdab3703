"""Metrics of the shared limiter: its fallback in each process, and the store's own state.

:class:`FallbackCollector` shows whether this process limits on its local share because the
store does not answer. :class:`SharedStateCollector` shows what the store holds for every alias
(read by the HTTP process at scrape time, so it includes what the workers hold)::

    view = SharedStateCollector(store, aliases)
    metrics.add(view)
    await view.refresh()  # before each exposition
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from app.engine.resources.shared import SharedRateStore
from app.engine.resources.store_state import StoreSnapshot
from app.services.limiting.fallback import FallbackRateStore


class FallbackCollector:
    """``inf_ratelimit_fallback{process}`` and ``inf_ratelimit_fallback_decisions_total``."""

    def __init__(self, store: FallbackRateStore, process: str) -> None:
        self.status = store.status
        self.process = process

    def collect(self) -> Iterator[Metric]:
        active = GaugeMetricFamily(
            "inf_ratelimit_fallback",
            "1 while this process limits on its local share (the shared store does not answer).",
            labels=["process"],
        )
        active.add_metric([self.process], 1 if self.status.active else 0)
        entered = CounterMetricFamily(
            "inf_ratelimit_fallback_entered",
            "Times this process lost the shared store and fell back to its local share.",
            labels=["process"],
        )
        entered.add_metric([self.process], self.status.entered)
        decisions = CounterMetricFamily(
            "inf_ratelimit_fallback_decisions",
            "Admissions (budget or slot) decided on the local share, not by the shared store.",
            labels=["alias", "process"],
        )
        for alias, count in self.status.decisions.items():
            decisions.add_metric([alias, self.process], count)
        return iter((active, entered, decisions))


class SharedStateCollector:
    """``inf_shared_*``: each alias's budgets, pause and leases as the shared store holds them.

    ``refresh`` reads the store; ``collect`` (sync, as Prometheus wants) shows the last read.
    An alias the store did not answer for is left out rather than shown from a local share.
    """

    def __init__(self, store: SharedRateStore, aliases: Iterable[str]) -> None:
        self.store = store
        self.aliases = list(aliases)
        self.last: dict[str, StoreSnapshot] = {}

    async def refresh(self) -> None:
        """Read every alias's snapshot from the store."""
        found = await asyncio.gather(*(self.store.snapshot(alias) for alias in self.aliases))
        pairs = zip(self.aliases, found, strict=True)
        self.last = {alias: seen for alias, seen in pairs if not seen.fallback}

    def collect(self) -> Iterator[Metric]:
        return iter(shared_families(self.last))


def shared_families(snapshots: dict[str, StoreSnapshot]) -> list[Metric]:
    """The ``inf_shared_*`` families of some aliases' snapshots."""
    budget = _BudgetFamilies()
    slots, slots_limit, holders, blocked = _slot_families()
    for alias, seen in snapshots.items():
        budget.add(alias, seen)
        slots.add_metric([alias], seen.slots_used)
        holders.add_metric([alias], len(seen.leases))
        blocked.add_metric([alias], seen.blocked_for_s)
        if seen.max_concurrent is not None:
            slots_limit.add_metric([alias], seen.max_concurrent)
    return [*budget.families, slots, slots_limit, holders, blocked]


class _BudgetFamilies:
    def __init__(self) -> None:
        self.limit = _budget("limit", "Shared limit per minute of every process.")
        self.used = _budget("used", "Units of the shared burst spent, not yet earned back (GCRA).")
        self.available = _budget("available", "Units of the shared budget spendable now.")
        self.learned = _budget(
            "learned",
            "Rate per minute in force learned from the provider (stated limits or 429s);"
            " absent while not learned.",
        )
        self.families = [self.limit, self.used, self.available, self.learned]

    def add(self, alias: str, seen: StoreSnapshot) -> None:
        resources = [
            ("requests", seen.requests, seen.learned_rpm),
            ("tokens", seen.tokens, seen.learned_tpm),
        ]
        for resource, state, learned in resources:
            if state.limit_per_minute is None:
                continue
            self.limit.add_metric([alias, resource], state.limit_per_minute)
            self.used.add_metric([alias, resource], state.used)
            self.available.add_metric([alias, resource], state.available)
            if learned is not None:
                self.learned.add_metric([alias, resource], learned)


def _budget(what: str, documentation: str) -> GaugeMetricFamily:
    return GaugeMetricFamily(
        f"inf_shared_ratelimit_{what}", documentation, labels=["alias", "resource"]
    )


def _slot_families() -> tuple[GaugeMetricFamily, ...]:
    return (
        GaugeMetricFamily(
            "inf_shared_slots_used", "Concurrency leases held, every process.", labels=["alias"]
        ),
        GaugeMetricFamily(
            "inf_shared_slots_limit", "Shared concurrency cap of every process.", labels=["alias"]
        ),
        GaugeMetricFamily(
            "inf_shared_lease_holders", "Processes holding concurrency leases.", labels=["alias"]
        ),
        GaugeMetricFamily(
            "inf_shared_blocked_seconds",
            "Seconds until the shared 429 pause ends (0: not paused).",
            labels=["alias"],
        ),
    )
