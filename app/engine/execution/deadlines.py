"""Call timeouts with one timer per event loop instead of one per call.

``asyncio.timeout`` schedules and cancels a loop timer for every call; at thousands of calls
a second that bookkeeping is a visible share of the client's CPU. A :class:`DeadlineWatch`
keeps the deadlines of all calls in one heap and arms a single timer for the earliest; when
it fires, the tasks whose deadline passed are cancelled; the caller sees ``expired`` on its
:class:`Deadline` and reports a timeout (see ``execution/calls.py``).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import weakref


class Deadline:
    """One watched task; ``expired`` once the watch cancelled it for running late."""

    __slots__ = ("deadline", "expired", "task")

    def __init__(self, task: asyncio.Task[object], deadline: float) -> None:
        self.task: asyncio.Task[object] | None = task
        self.deadline = deadline
        self.expired = False


class DeadlineWatch:
    """Cancels tasks that outlive their deadline, with a single timer for the whole loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._heap: list[tuple[float, int, Deadline]] = []
        self._seq = itertools.count()
        self._live = 0
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = float("inf")

    def add(self, task: asyncio.Task[object], timeout_s: float) -> Deadline:
        """Watch ``task`` for ``timeout_s`` seconds from now."""
        entry = Deadline(task, self._loop.time() + timeout_s)
        heapq.heappush(self._heap, (entry.deadline, next(self._seq), entry))
        self._live += 1
        if entry.deadline < self._timer_at:
            self._arm(entry.deadline)
        return entry

    def discard(self, entry: Deadline) -> None:
        """Stop watching (the call finished); dead entries are dropped lazily."""
        if entry.task is not None:
            entry.task = None
            self._live -= 1
            if len(self._heap) > 2 * self._live + 1024:
                self._compact()

    def _compact(self) -> None:
        self._heap = [item for item in self._heap if item[2].task is not None]
        heapq.heapify(self._heap)

    def _arm(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._loop.call_at(when, self._fire)
        self._timer_at = when

    def _fire(self) -> None:
        self._timer, self._timer_at = None, float("inf")
        now, heap = self._loop.time(), self._heap
        while heap and (heap[0][2].task is None or heap[0][0] <= now):
            entry = heapq.heappop(heap)[2]
            if entry.task is not None:
                entry.expired = True
                entry.task.cancel()
                entry.task = None
                self._live -= 1
        if heap:
            self._arm(heap[0][0])


_watches: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, DeadlineWatch] = (
    weakref.WeakKeyDictionary()
)


def deadline_watch() -> DeadlineWatch:
    """The watch of the running loop."""
    loop = asyncio.get_running_loop()
    watch = _watches.get(loop)
    if watch is None:
        watch = _watches[loop] = DeadlineWatch(loop)
    return watch
