"""Batches: many inputs through one program with bounded memory (DESIGN §5).

Items are pulled from the input iterable only as slots free up, so a generator of a
million inputs never sits in memory; in ordered mode, finished items waiting for an
earlier one count against the same bound.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Iterator, Sized
from typing import Any

from app.engine.execution.inputs import bind_item
from app.engine.execution.plan import Plan
from app.engine.execution.prepared import Execution
from app.engine.execution.settings import ExecutionSettings
from app.engine.records import BatchResult
from app.engine.resources.manager import ResourceManager

DEFAULT_WINDOW = 256


class BatchRunner:
    """Keeps up to ``max_in_flight`` items running and hands back their results."""

    def __init__(self, execution: Execution) -> None:
        settings = execution.settings
        self.execution = execution
        self.settings = settings
        self.window = settings.max_in_flight or _default_window(execution.plan, settings)
        self.ordered = settings.ordered if settings.ordered is not None else True
        self._finished: asyncio.Queue[BatchResult] = asyncio.Queue()
        self._tasks: set[asyncio.Task[None]] = set()

    async def results(self, items: Iterable[Any]) -> AsyncIterator[BatchResult]:
        total = len(items) if isinstance(items, Sized) else None
        source = enumerate(iter(items))
        held: dict[int, BatchResult] = {}
        started = self._fill(source, 0, 0)
        received = yielded = 0
        try:
            while received < started:
                result = await self._finished.get()
                received += 1
                self._progress(received, total)
                for ready in self._release(result, held, yielded):
                    yielded += 1
                    yield ready
                started = self._fill(source, started, yielded)
        finally:
            await self._cancel()

    def _release(
        self, result: BatchResult, held: dict[int, BatchResult], yielded: int
    ) -> list[BatchResult]:
        """Results ready to hand out: this one, or (ordered) every consecutive one held back."""
        if not self.ordered:
            return [result]
        held[result.index] = result
        ready: list[BatchResult] = []
        while yielded + len(ready) in held:
            ready.append(held.pop(yielded + len(ready)))
        return ready

    def _fill(self, source: Iterator[tuple[int, Any]], started: int, yielded: int) -> int:
        """Start items while fewer than ``window`` are unfinished or held; return items started."""
        while started - yielded < self.window:
            entry = next(source, None)
            if entry is None:
                break
            task = asyncio.get_running_loop().create_task(self._run_item(*entry))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            started += 1
        return started

    async def _run_item(self, index: int, item: Any) -> None:
        result = BatchResult(index, item)
        try:
            execution = self.execution
            inputs = bind_item(execution.plan.graph.inputs, item)
            result.output = execution.finish(await execution.run(inputs, f"item-{index}"))
        except Exception as exc:
            result.error = exc
        self._finished.put_nowait(result)

    def _progress(self, done: int, total: int | None) -> None:
        if self.settings.on_progress is not None:
            self.settings.on_progress(done, total)

    async def _cancel(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _default_window(plan: Plan, settings: ExecutionSettings) -> int:
    """Twice the concurrency of the endpoints the graph uses: enough to keep them busy."""
    resources = settings.resources
    config = resources.config if isinstance(resources, ResourceManager) else resources
    if config is None:
        return DEFAULT_WINDOW
    slots = sum(config.endpoints[a].max_concurrent for a in plan.aliases if a in config.endpoints)
    return max(16, 2 * slots) if slots else DEFAULT_WINDOW
