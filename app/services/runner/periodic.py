"""A coroutine run again and again in the background, a fixed pause apart, until stopped."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from app.services.errors import is_outage
from app.services.runner.outages import reason

log = logging.getLogger(__name__)


class Periodic:
    """Runs ``work`` every ``interval_s`` (after each run ends) from ``start`` to ``stop``; a run
    that raises is logged and the next one follows as usual.

        sweeper = Periodic("retention", sweep, 600.0)
        sweeper.start()
        ...
        await sweeper.stop()
    """

    def __init__(self, name: str, work: Callable[[], Awaitable[object]], interval_s: float) -> None:
        self.name = name
        self.work = work
        self.interval_s = interval_s
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop(), name=self.name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _loop(self) -> None:
        while True:
            try:
                await self.work()
            except Exception as exc:
                self._failed(exc)
            await asyncio.sleep(self.interval_s)

    def _failed(self, exc: Exception) -> None:
        """One line while the database is down, else the trace; the next run follows as usual."""
        if is_outage(exc):
            note = "%s: database unavailable (%s); trying again in %.0f s"
            log.warning(note, self.name, reason(exc), self.interval_s)
        else:
            log.exception("%s failed; trying again in %.0f s", self.name, self.interval_s)
