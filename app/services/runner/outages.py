"""Database work of the runner that waits out an outage instead of failing.

While Postgres restarts (or the network to it is cut) every statement fails with a lost or
refused connection. The runner's loops (the claim loop, a run's page reads and its end, the
result writer's flushes) retry such work with a backoff that doubles from
``RETRY_FIRST_S`` to ``RETRY_MAX_S``, logging one line per attempt; any other error is
raised as before. Once the database answers again, the next attempt succeeds within
``RETRY_MAX_S``.

    page = await retrying(lambda: read_page(cursor), "reading job 42's items")
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from app.services.errors import is_outage

log = logging.getLogger(__name__)
T = TypeVar("T")
RETRY_FIRST_S = 0.1
RETRY_MAX_S = 2.0


def backoff(attempt: int, first_s: float = RETRY_FIRST_S, max_s: float = RETRY_MAX_S) -> float:
    """The wait before retry number ``attempt`` (from 0).

    >>> [backoff(n) for n in (0, 1, 2, 5)]
    [0.1, 0.2, 0.4, 2.0]
    """
    return min(first_s * 2.0**attempt, max_s)


def reason(exc: BaseException) -> str:
    """An outage error in one short line (for logs that repeat while the database is down)."""
    cause = getattr(exc, "orig", None) or exc
    lines = str(cause).strip().splitlines() or [""]
    return f"{type(cause).__name__}: {lines[0][:200]}"


async def retrying(work: Callable[[], Awaitable[T]], what: str, attempts: int | None = None) -> T:
    """``await work()`` until it succeeds; an outage error is retried with backoff (at most
    ``attempts`` tries in all, if given: then it raises), any other error raises at once."""
    attempt = 0
    while True:
        try:
            return await work()
        except Exception as exc:
            if not is_outage(exc) or (attempts is not None and attempt + 1 >= attempts):
                raise
            wait_s = backoff(attempt)
            note = "%s: database unavailable (%s); retrying in %.1fs"
            log.warning(note, what, reason(exc), wait_s)
        attempt += 1
        await asyncio.sleep(wait_s)
