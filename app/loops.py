"""The event loop a process runs on: uvloop where it is installed, else asyncio's own.

    run_loop(main())

uvicorn runs the HTTP process on uvloop when it can; the job runner and benchmarks use this so
every process runs on the same kind of loop. uvloop spends less CPU per socket event, which a
process with hundreds of calls in flight is mostly made of.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run_loop(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` on a new event loop (uvloop if available); its result."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)
