"""Waiting in a test, without a fixed sleep, for something the service does to show."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


async def until(check: Callable[[], Awaitable[bool]], timeout_s: float = 60.0) -> None:
    """Poll ``check`` until it holds."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "timed out waiting"
        await asyncio.sleep(0.02)
