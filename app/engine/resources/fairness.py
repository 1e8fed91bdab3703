"""The order in which an endpoint's waiting calls are served: priority with aging, then fairness.

Each waiting call has a priority (lower first) and a :class:`Flow` (whose call it is). Among
priorities, the one whose oldest waiter has the smallest *aged key* is served next, where
``key = enqueued_at + priority * aging_s``: a lower priority wins until a call of a higher
value has waited ``aging_s`` per unit of difference longer, so no priority starves. Within a
priority, capacity is shared first between tenants in proportion to their ``weight``, then
equally between the tenant's jobs: the next call is the one of the tenant, then the job, with
the fewest calls in flight (per unit of weight), so a newcomer takes freed slots until it holds
its share; ties go by start-time fair queuing (each grant costs one), which also keeps grants
fair where calls are too short to overlap. A job's own calls are served in arrival order.

>>> queue: FairQueue[str] = FairQueue(aging_s=10.0, alive=lambda item: True)
>>> for i in range(3):
...     queue.push(f"big-{i}", 0, Flow("t", "big"), now=0.0)
>>> queue.push("small-0", 0, Flow("t", "small"), now=1.0)
>>> [queue.pop() for _ in range(4)]
['big-0', 'small-0', 'big-1', 'big-2']
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

T = TypeVar("T")
AGING_S = 10.0  # seconds of extra wait that outweigh one unit of priority


@dataclass(frozen=True, slots=True)
class Flow:
    """Whose call this is: shares split first between tenants by ``weight``, then equally
    between a tenant's jobs (``job`` may be any key: a run, an evaluation...)."""

    tenant: str = ""
    job: str = ""
    weight: float = 1.0


NO_FLOW = Flow()


@dataclass(slots=True, eq=False)
class _Job(Generic[T]):
    vtime: float
    entries: deque[tuple[float, T]] = field(default_factory=deque)


@dataclass(slots=True, eq=False)
class _Tenant(Generic[T]):
    vtime: float
    weight: float
    clock: float = 0.0  # the start tag of the job served last: where new jobs begin
    jobs: dict[str, _Job[T]] = field(default_factory=dict)


@dataclass(slots=True, eq=False)
class _Level(Generic[T]):
    """The waiters of one priority."""

    clock: float = 0.0  # the start tag of the tenant served last
    tenants: dict[str, _Tenant[T]] = field(default_factory=dict)


_Path = tuple[int, str, str]


class FairQueue(Generic[T]):
    """Waiting items in service order (see the module docstring); not thread-safe.

    ``alive(item)`` tells whether an item still waits: dead ones (cancelled) are skipped and
    dropped lazily, or all at once by :meth:`compact`.
    """

    def __init__(self, *, aging_s: float = AGING_S, alive: Callable[[T], bool]) -> None:
        self.aging_s = aging_s
        self._alive = alive
        self._levels: dict[int, _Level[T]] = {}
        self._entries = 0
        self._next: _Path | None = None
        self._running: dict[tuple[str, str], int] = {}  # calls in flight by (tenant, job)
        self._tenant_running: dict[str, int] = {}

    def started(self, flow: Flow) -> None:
        """A call of ``flow`` got its slot (popped, or admitted without waiting)."""
        key = (flow.tenant, flow.job)
        self._running[key] = self._running.get(key, 0) + 1
        self._tenant_running[flow.tenant] = self._tenant_running.get(flow.tenant, 0) + 1
        self._next = None

    def finished(self, flow: Flow) -> None:
        """A call of ``flow`` gave its slot back."""
        key = (flow.tenant, flow.job)
        _decrement(self._running, key)
        _decrement(self._tenant_running, flow.tenant)
        self._next = None

    def __len__(self) -> int:
        """Entries held, dead ones not yet dropped included."""
        return self._entries

    def push(self, item: T, priority: int, flow: Flow, now: float) -> None:
        """Queue ``item``, enqueued at clock reading ``now``."""
        level = self._levels.setdefault(priority, _Level())
        tenant = level.tenants.get(flow.tenant)
        if tenant is None:
            # NOTE: a tenant (or job) that starts waiting begins at the current virtual time,
            # so an idle one cannot bank credit and a new one is served at once.
            tenant = level.tenants[flow.tenant] = _Tenant(level.clock, flow.weight)
        tenant.weight = flow.weight
        job = tenant.jobs.get(flow.job)
        if job is None:
            job = tenant.jobs[flow.job] = _Job(tenant.clock)
        job.entries.append((now + priority * self.aging_s, item))
        self._entries += 1
        self._next = None

    def head(self) -> T | None:
        """The item to serve next, or ``None`` if none waits."""
        if self._next is not None:
            priority, tenant, job = self._next
            item = self._levels[priority].tenants[tenant].jobs[job].entries[0][1]
            if self._alive(item):
                return item
        self._next = self._choose()
        if self._next is None:
            return None
        priority, tenant, job = self._next
        return self._levels[priority].tenants[tenant].jobs[job].entries[0][1]

    def pop(self) -> T:
        """Remove and return :meth:`head` (which must not be ``None``), booking its share."""
        if self.head() is None or self._next is None:
            raise IndexError("pop from an empty FairQueue")
        priority, tenant_key, job_key = self._next
        self._next = None
        level = self._levels[priority]
        tenant = level.tenants[tenant_key]
        job = tenant.jobs[job_key]
        _, item = job.entries.popleft()
        self._entries -= 1
        level.clock, tenant.vtime = tenant.vtime, tenant.vtime + 1.0 / tenant.weight
        tenant.clock, job.vtime = job.vtime, job.vtime + 1.0
        self._prune(priority, tenant_key, job_key)
        return item

    def compact(self) -> None:
        """Drop every dead entry now (keeps abandoned waiters from piling up)."""
        for priority, level in list(self._levels.items()):
            for tenant_key, tenant in list(level.tenants.items()):
                for job_key, job in list(tenant.jobs.items()):
                    live = deque(entry for entry in job.entries if self._alive(entry[1]))
                    self._entries -= len(job.entries) - len(live)
                    job.entries = live
                    self._prune(priority, tenant_key, job_key)
        self._next = None

    # -- choosing ----------------------------------------------------------------------

    def _choose(self) -> _Path | None:
        best: tuple[float, int] | None = None
        for priority in list(self._levels):
            oldest = self._oldest(priority)
            if oldest is not None and (best is None or (oldest, priority) < best):
                best = (oldest, priority)
        if best is None:
            return None
        tenants = self._levels[best[1]].tenants
        running = self._tenant_running
        tenant_key = min(
            tenants,
            key=lambda key: (running.get(key, 0) / tenants[key].weight, tenants[key].vtime),
        )
        jobs = tenants[tenant_key].jobs
        job_running = self._running
        job_key = min(
            jobs, key=lambda key: (job_running.get((tenant_key, key), 0), jobs[key].vtime)
        )
        return best[1], tenant_key, job_key

    def _oldest(self, priority: int) -> float | None:
        """The aged key of the priority's oldest live waiter, dropping dead heads."""
        level = self._levels[priority]
        oldest: float | None = None
        for tenant_key, tenant in list(level.tenants.items()):
            for job_key, job in list(tenant.jobs.items()):
                entries = job.entries
                while entries and not self._alive(entries[0][1]):
                    entries.popleft()
                    self._entries -= 1
                if entries and (oldest is None or entries[0][0] < oldest):
                    oldest = entries[0][0]
                self._prune(priority, tenant_key, job_key)
        return oldest

    def _prune(self, priority: int, tenant_key: str, job_key: str) -> None:
        """Forget a job, tenant or priority left with nothing waiting."""
        level = self._levels[priority]
        tenant = level.tenants[tenant_key]
        if tenant.jobs[job_key].entries:
            return
        del tenant.jobs[job_key]
        if not tenant.jobs:
            del level.tenants[tenant_key]
        if not level.tenants:
            del self._levels[priority]


def _decrement(counts: dict[Any, int], key: Any) -> None:
    left = counts.get(key, 0) - 1
    if left > 0:
        counts[key] = left
    else:
        counts.pop(key, None)
