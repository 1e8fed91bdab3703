"""What a shared rate store holds for one alias right now: a read-only view (DESIGN §5).

:meth:`SharedRateStore.snapshot <app.engine.resources.shared.SharedRateStore.snapshot>` answers
with a :class:`StoreSnapshot`: each budget in GCRA terms (how much of its burst is spent and
not yet earned back), the remaining 429 pause and the concurrency leases by the process holding
them. Lease owners are ``<process>:<call>`` (see :func:`lease_owner`), so a snapshot read by
the HTTP process names the workers that hold the slots.

>>> from app.engine.resources.shared import Rate
>>> budget_state(Rate(interval_s=1.0, capacity=10.0), tat=14.0, now=10.0, per_minute=60)
BudgetState(limit_per_minute=60, capacity=10.0, used=4.0, available=6.0)
>>> holder_of("host-41:9f2c")
'host-41'
"""

from __future__ import annotations

import functools
import itertools
import os
import socket
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.engine.resources.shared import Rate

UNKNOWN_HOLDER = "unknown"


@dataclass(frozen=True, slots=True)
class BudgetState:
    """One GCRA budget: ``used`` units of the burst ``capacity`` are spent and not yet earned
    back; ``available`` could be spent now. ``limit_per_minute`` is ``None`` when unlimited."""

    limit_per_minute: float | None
    capacity: float
    used: float
    available: float


@dataclass(frozen=True, slots=True)
class StoreSnapshot:
    """An alias's shared state as the store sees it.

    ``leases`` counts the live concurrency leases per holding process. ``learned_rpm`` and
    ``learned_tpm`` are the learned rates in force (from the provider's headers or its 429s,
    see :mod:`app.engine.resources.learning`; ``None``: not learned, or decayed back).
    ``fallback`` is True when the figures are this process's local share because the store
    did not answer.
    """

    requests: BudgetState
    tokens: BudgetState
    max_concurrent: int | None
    blocked_for_s: float
    leases: dict[str, int] = field(default_factory=dict)
    learned_rpm: float | None = None
    learned_tpm: float | None = None
    fallback: bool = False

    @property
    def slots_used(self) -> int:
        """Live leases, every process together."""
        return sum(self.leases.values())


def budget_state(rate: Rate, tat: float, now: float, per_minute: float | None) -> BudgetState:
    """The state of a budget whose theoretical arrival time is ``tat`` at store time ``now``."""
    if rate.interval_s <= 0.0:
        return BudgetState(limit_per_minute=None, capacity=0.0, used=0.0, available=0.0)
    used = max(0.0, tat - now) / rate.interval_s
    available = max(0.0, rate.capacity - used)
    return BudgetState(per_minute, rate.capacity, used, available)


def process_id() -> str:
    """This process as lease owners name it: ``<host>-<pid>`` (the pid read per call: forks
    differ)."""
    return _named(os.getpid())


@functools.lru_cache(maxsize=8)
def _named(pid: int) -> str:
    return f"{socket.gethostname()}-{pid}"


_CALLS = itertools.count()


def lease_owner() -> str:
    """A new lease owner id for one call of this process: ``<host>-<pid>:<token>-<n>``, a
    random token drawn once per process and a call number (in hex), unique without a random
    draw per call."""
    return f"{_prefix(os.getpid())}{next(_CALLS):x}"


@functools.lru_cache(maxsize=8)
def _prefix(pid: int) -> str:
    return f"{_named(pid)}:{uuid.uuid4().hex[:16]}-"


def lease_holder() -> str:
    """What every lease owner id of this process starts with, up to its call number
    (``<host>-<pid>:<token>``): the key of the process's liveness mark in a store."""
    return _prefix(os.getpid())[:-1]


def holder_of(owner: str) -> str:
    """The process part of a lease owner id (``unknown`` for ids without one)."""
    process, sep, _ = owner.rpartition(":")
    return process if sep and process else UNKNOWN_HOLDER


def leases_by_holder(owners: Iterable[str]) -> dict[str, int]:
    """Live lease owners counted by the process holding them."""
    return dict(Counter(holder_of(owner) for owner in owners))
