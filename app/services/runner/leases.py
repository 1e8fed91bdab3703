"""Lease renewal on a thread of its own, so that a stalled event loop keeps its leases.

The runner's event loop can stall: a long synchronous call, a CPU-bound burst, a huge
document to parse. A heartbeat on that loop would stall with it, and a stall longer than
``lease_s`` would let another process take over jobs whose runner is alive. The
:class:`LeaseKeeper` renews them from a thread with its own event loop and database engine,
and hands each renewal's outcome (which jobs are still held, which were cancelled) to the
runner's loop with ``call_soon_threadsafe``. A process that is really frozen (``SIGSTOP``, a
debugger) freezes this thread too, so its leases lapse as they should.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.repositories import jobs as jobs_repo
from app.db.session import create_engine, session_factory
from app.services.errors import is_outage
from app.services.runner.outages import reason

log = logging.getLogger(__name__)
Report = Callable[[Sequence[str], dict[str, str]], None]


class LeaseKeeper:
    """Every ``heartbeat_s``, renews the leases of the jobs ``held()`` names; ``report(held,
    statuses)`` then runs on the loop that called ``start`` (see ``jobs.renew_leases``)."""

    def __init__(
        self,
        database_url: str,
        owner: str,
        timing: tuple[float, float],
        held: Callable[[], Sequence[str]],
        report: Report,
    ) -> None:
        self._url = database_url
        self._owner = owner
        self._lease_s, self._heartbeat_s = timing
        self._held = held
        self._report = report
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._stop.clear()
        self._thread = threading.Thread(
            target=asyncio.run, args=(self._run(loop),), name="lease-keeper", daemon=True
        )
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    async def stop(self) -> None:
        """Stop renewing; returns once the thread has closed its connections."""
        self._stop.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)
            self._thread = None

    async def _run(self, loop: asyncio.AbstractEventLoop) -> None:
        engine = create_engine(self._url)
        sessions = session_factory(engine)
        try:
            while not await asyncio.to_thread(self._stop.wait, self._heartbeat_s):
                try:
                    held = list(self._held())
                    if held:
                        statuses = await self._renew(sessions, held)
                        loop.call_soon_threadsafe(self._report, held, statuses)
                except Exception as exc:
                    _renewal_failed(exc)
        finally:
            await engine.dispose()

    async def _renew(
        self, sessions: async_sessionmaker[AsyncSession], held: list[str]
    ) -> dict[str, str]:
        async with sessions() as session:
            now = datetime.now(UTC)
            statuses = await jobs_repo.renew_leases(session, self._owner, held, self._lease_s, now)
            await session.commit()
        return statuses


def _renewal_failed(exc: Exception) -> None:
    """One line while the database is down (the next heartbeat retries), else the trace."""
    if is_outage(exc):
        log.warning("renewing leases: database unavailable (%s); retrying", reason(exc))
    else:
        log.exception("renewing leases failed; retrying")
