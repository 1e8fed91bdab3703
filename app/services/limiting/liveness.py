"""Whether the process holding a lease on this machine is gone, read from its owner id.

A lease owner id names its process (``<host>-<pid>:<token>-<n>``, see
:func:`~app.engine.resources.store_state.lease_owner`). A SQLite file serves the processes of
one machine, so a lease of this host whose pid no longer runs belongs to a dead process.
Anything unsure (another host, an id of another shape, a pid that runs again, perhaps
reused) counts as alive: its lease then lapses as before::

    dead = [owner for owner in owners if holder_is_gone(owner)]

A store looks for dead holders only when a slot was refused, and at most once a second per
alias (:class:`DeadCheck`): while calls wait for slots, refusals come every poll (20 ms) from
every waiting call.
"""

from __future__ import annotations

import os
import re
import socket
import time

_OWNER = re.compile(r"^(?P<host>.+)-(?P<pid>\d+):[0-9a-f]{16}-[0-9a-f]+$")


def holder_is_gone(owner: str) -> bool:
    """Whether ``owner``'s process ran on this host and no process has its pid now."""
    found = _OWNER.match(owner)
    if found is None or found["host"] != socket.gethostname():
        return False
    try:
        os.kill(int(found["pid"]), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError):
        return False
    return False


class DeadCheck:
    """When a refused slot may look for dead holders: at most once per ``every_s`` per alias.

    >>> check = DeadCheck()
    >>> check.due("fast"), check.due("fast")
    (True, False)
    """

    def __init__(self, every_s: float = 1.0) -> None:
        self.every_s = every_s
        self._checked_at: dict[str, float] = {}

    def due(self, alias: str) -> bool:
        """Whether to look now (counted as a look)."""
        now = time.monotonic()
        if now < self._checked_at.get(alias, float("-inf")) + self.every_s:
            return False
        self._checked_at[alias] = now
        return True
