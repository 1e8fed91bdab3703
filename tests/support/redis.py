"""The Redis that tests of the shared rate store use.

``TEST_REDIS_URL`` names it (`.ci/run` sets it): then a Redis that does not answer fails the
tests. Without it the local Redis is used when it answers, and the tests are skipped when not.
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlsplit

import pytest

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def redis_is_up() -> bool:
    where = urlsplit(REDIS_URL)
    try:
        socket.create_connection((where.hostname or "127.0.0.1", where.port or 6379), 0.5).close()
    except OSError:
        return False
    return True


def require_redis() -> None:
    """Skip the calling test when no Redis was named and the local one is down; fail it when
    ``TEST_REDIS_URL`` names a Redis that does not answer."""
    if redis_is_up():
        return
    if "TEST_REDIS_URL" in os.environ:
        pytest.fail(f"TEST_REDIS_URL={REDIS_URL} does not answer")
    pytest.skip(f"Redis tests need a server at {REDIS_URL} (or TEST_REDIS_URL)")
