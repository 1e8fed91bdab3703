"""The local Redis that tests of the shared rate store use (skipped when it is down)."""

from __future__ import annotations

import socket

REDIS_URL = "redis://127.0.0.1:6379/0"


def redis_is_up() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=0.5).close()
    except OSError:
        return False
    return True
