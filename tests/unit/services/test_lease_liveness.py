"""A lease's process is gone only when it ran here and its pid runs no more."""

from __future__ import annotations

import subprocess
import sys

from app.engine.resources.store_state import lease_owner, process_id
from app.services.limiting.liveness import holder_is_gone


def owner_of_pid(pid: int) -> str:
    host = process_id().rsplit("-", 1)[0]
    return f"{host}-{pid}:0123456789abcdef-1f"


def test_a_finished_process_of_this_host_is_gone() -> None:
    finished = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert holder_is_gone(owner_of_pid(int(finished.stdout)))


def test_a_live_process_another_host_or_another_shape_is_not() -> None:
    assert not holder_is_gone(lease_owner())
    assert not holder_is_gone("elsewhere-999999:0123456789abcdef-1")
    assert not holder_is_gone("call-1")
