"""Work a component starts in the background and waits for when it closes.

>>> import asyncio
>>> async def main():
...     tasks = TaskSet()
...     tasks.spawn(asyncio.sleep(0))
...     await tasks.drain()
...     return len(tasks)
>>> asyncio.run(main())
0
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any


class TaskSet:
    """Tasks kept referenced until they finish (the loop holds only weak references)."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self._tasks)

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait for every task started so far (their errors are dropped)."""
        await asyncio.gather(*self._tasks, return_exceptions=True)
