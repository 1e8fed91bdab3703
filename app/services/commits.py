"""Actions that wait for a session's commit: a write is announced only once it lasts.

>>> after_commit(session, runner.notify)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession

AFTER_COMMIT = "after_commit"


def after_commit(session: AsyncSession, action: Callable[[], None]) -> None:
    """Run ``action`` once ``session`` commits; a rollback drops it. What the rest of the process
    must learn of a write (a runner to wake, a counter to move) waits until the write lasts."""
    actions: list[Callable[[], None]] | None = session.info.get(AFTER_COMMIT)
    if actions is None:
        actions = session.info[AFTER_COMMIT] = []
        event.listen(session.sync_session, "after_commit", lambda _s: _run(actions))
        event.listen(session.sync_session, "after_rollback", lambda _s: actions.clear())
    actions.append(action)


def _run(actions: list[Callable[[], None]]) -> None:
    pending = list(actions)
    actions.clear()
    for action in pending:
        action()
