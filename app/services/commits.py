"""Actions that wait for a session's commit: a write is announced only once it lasts.

What the rest of the process must learn of a write (a runner to wake, a counter to move) is
registered with :func:`after_commit` and runs when the session's transaction commits; a
transaction that ends any other way drops it.

>>> after_commit(session, runner.notify)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

_PENDING = "inf_after_commit"


def after_commit(session: AsyncSession, action: Callable[[], None]) -> None:
    """Run ``action`` once the session's current transaction commits; never if it does not."""
    sync = session.sync_session
    pending: list[Callable[[], None]] | None = sync.info.get(_PENDING)
    if pending is None:
        pending = sync.info[_PENDING] = []
        event.listen(sync, "after_commit", _run_pending)
        event.listen(sync, "after_transaction_end", _drop_pending)
    pending.append(action)


def _run_pending(session: Session) -> None:
    pending: list[Callable[[], None]] = session.info[_PENDING]
    actions, pending[:] = list(pending), []
    for action in actions:
        action()


def _drop_pending(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # the outermost transaction ended without a commit
        session.info[_PENDING].clear()
