"""One timer for every call timeout: expiry cancels exactly the late tasks, memory stays flat."""

from __future__ import annotations

import asyncio

from app.engine.execution.deadlines import deadline_watch


async def test_late_task_is_cancelled_and_marked_expired() -> None:
    watch = deadline_watch()
    slow = asyncio.create_task(asyncio.sleep(10))
    fast = asyncio.create_task(asyncio.sleep(0.01))
    late, early = watch.add(slow, 0.02), watch.add(fast, 5.0)
    await asyncio.gather(slow, fast, return_exceptions=True)
    assert slow.cancelled()
    assert late.expired
    assert not fast.cancelled()
    assert not early.expired
    watch.discard(early)


async def test_discarded_deadlines_do_not_pile_up() -> None:
    watch = deadline_watch()
    task = asyncio.create_task(asyncio.sleep(0))
    for _ in range(10_000):
        watch.discard(watch.add(task, 60.0))
    assert len(watch._heap) <= 1024 + 1
    await task
