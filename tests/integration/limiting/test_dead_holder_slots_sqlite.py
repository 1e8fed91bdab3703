"""Slots of a killed process come back at once on a SQLite file, not after their lease.

A refused slot gives back the leases of processes of this machine whose pid no longer runs.
A real process takes the slots and is killed with SIGKILL.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from pathlib import Path

from app.engine.resources.shared import AliasLimits
from app.engine.resources.store_state import lease_owner
from app.services.limiting.sqlite_store import SqliteRateStore
from tests.support.db import copy_sqlite

LIMITS = {"m": AliasLimits(max_concurrent=3)}
PROMPTLY_S = 3.0  # the look for dead holders runs at most once a second: well under 30 s

_HOLDER = """
import asyncio, sys
from app.engine.resources.shared import AliasLimits
from app.engine.resources.store_state import lease_owner
from app.services.limiting.sqlite_store import SqliteRateStore

async def main(url):
    store = SqliteRateStore(url, {"m": AliasLimits(max_concurrent=3)})
    for _ in range(2):
        assert await store.acquire_slot("m", lease_owner(), ttl_s=30.0)
    print("held", flush=True)
    await asyncio.sleep(600)

asyncio.run(main(sys.argv[1]))
"""


async def took_within(store: SqliteRateStore, seconds: float) -> float | None:
    began = time.monotonic()
    while time.monotonic() - began < seconds:
        if await store.acquire_slot("m", lease_owner(), ttl_s=30.0):
            return time.monotonic() - began
        await asyncio.sleep(0.02)
    return None


async def test_a_killed_processs_slots_come_back_at_once(
    sqlite_template: Path, tmp_path: Path
) -> None:
    url = copy_sqlite(sqlite_template, tmp_path / "limits.sqlite")
    store = SqliteRateStore(url, LIMITS)
    assert await store.acquire_slot("m", lease_owner(), ttl_s=30.0)
    holder = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _HOLDER, url, stdout=asyncio.subprocess.PIPE
    )
    assert holder.stdout is not None
    assert await asyncio.wait_for(holder.stdout.readline(), timeout=30) == b"held\n"
    try:
        assert await took_within(store, 1.5) is None, "a live process's slots are never freed"
    finally:
        holder.send_signal(signal.SIGKILL)
        await holder.wait()
    waited = await took_within(store, PROMPTLY_S)
    assert waited is not None, "the killed process's slots came back"
    assert (await store.snapshot("m")).slots_used == 2, "this process's own slot stayed"
    await store.aclose()
