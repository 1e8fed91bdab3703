"""The runner's window: a freed slot goes to the waiting run holding fewest, never idles."""

from __future__ import annotations

import asyncio

import pytest

from app.services.runner.window import FairWindow


async def test_a_run_alone_may_fill_the_window() -> None:
    window = FairWindow(3)
    for _ in range(3):
        await asyncio.wait_for(window.acquire("big"), timeout=1)
    assert window.held == {"big": 3}


async def test_a_freed_slot_goes_to_the_run_holding_fewest() -> None:
    window = FairWindow(4)
    for _ in range(4):
        await window.acquire("big")
    big_next = asyncio.create_task(window.acquire("big"))  # waiting first
    small = [asyncio.create_task(window.acquire("small")) for _ in range(2)]
    await asyncio.sleep(0)

    for _ in range(2):
        window.release("big")
    await asyncio.sleep(0)

    assert all(task.done() for task in small)
    assert not big_next.done()
    window.release("small")
    await asyncio.wait_for(big_next, timeout=1)  # now big holds 2, small 1: but only big waits
    assert window.held == {"big": 3, "small": 1}


async def test_a_cancelled_waiter_takes_no_slot() -> None:
    window = FairWindow(1)
    await window.acquire("a")
    waiting = asyncio.create_task(window.acquire("b"))
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting

    window.release("a")

    assert window.in_flight == 0
    await asyncio.wait_for(window.acquire("c"), timeout=1)
