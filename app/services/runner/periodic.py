"""A coroutine run again and again in the background, a fixed pause apart, until stopped."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

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
            except Exception:
                log.exception("%s failed; trying again in %.0f s", self.name, self.interval_s)
            await asyncio.sleep(self.interval_s)
