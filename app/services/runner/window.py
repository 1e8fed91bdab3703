"""The runner's window: the steps one process has in flight over all its runs, shared fairly.

A plain semaphore would let a run with a million items keep the whole window, so that a small
run submitted after it waits for a slot as often as the big one. Here, a freed slot goes to the
waiting run that holds the fewest (max-min fairness); a run alone may still use the whole
window, so nothing is left idle.

>>> import asyncio
>>> async def demo() -> list[str]:
...     window = FairWindow(2)
...     await window.acquire("big")
...     await window.acquire("big")
...     waits = [asyncio.create_task(window.acquire(run)) for run in ("big", "small")]
...     await asyncio.sleep(0)
...     window.release("big")
...     await asyncio.sleep(0)
...     return [run for run, task in zip(("big", "small"), waits) if task.done()]
>>> asyncio.run(demo())
['small']
"""

from __future__ import annotations

import asyncio
from collections import deque


class FairWindow:
    """At most ``capacity`` slots held at once; waiting runs served fewest-held first."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.held: dict[str, int] = {}
        self._total = 0
        self._waiters: dict[str, deque[asyncio.Future[None]]] = {}

    @property
    def in_flight(self) -> int:
        """Slots held over every run."""
        return self._total

    async def acquire(self, run: str) -> None:
        """Wait for a slot for ``run``."""
        if self._total < self.capacity and not self._waiters:
            self._take(run)
            return
        future = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(run, deque()).append(future)
        self._dispatch()
        try:
            await future
        except asyncio.CancelledError:
            self._forget(run, future)
            raise

    def release(self, run: str) -> None:
        """Give back a slot ``run`` holds."""
        left = self.held[run] - 1
        if left:
            self.held[run] = left
        else:
            del self.held[run]
        self._total -= 1
        self._dispatch()

    def _take(self, run: str) -> None:
        self.held[run] = self.held.get(run, 0) + 1
        self._total += 1

    def _dispatch(self) -> None:
        while self._total < self.capacity and self._waiters:
            run = min(self._waiters, key=lambda key: self.held.get(key, 0))
            queue = self._waiters[run]
            future = queue.popleft()
            if not queue:
                del self._waiters[run]
            self._take(run)
            future.set_result(None)

    def _forget(self, run: str, future: asyncio.Future[None]) -> None:
        if future.done() and not future.cancelled():
            self.release(run)  # NOTE: granted just before the cancel: the slot goes back
            return
        queue = self._waiters.get(run)
        if queue is not None and future in queue:
            queue.remove(future)
            if not queue:
                del self._waiters[run]
