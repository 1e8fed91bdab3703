"""The HTTP process shows what its runner child holds in the shared limiter: ``GET
/v1/endpoints`` (``shared``) and ``/metrics`` (``inf_shared_*``) read it from the store.

Before, the HTTP process showed only its own limiter (``state: null`` while the runner's jobs
ran); the runner's leases name its process, so the view says who holds the slots.
"""

from __future__ import annotations

import socket
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.test_shared_limits import ONE_CALL
from tests.support.db import sqlite_url
from tests.support.fake_llm import FakeLLM
from tests.support.processes import (
    ServerProcess,
    Servers,
    endpoints_for,
    server_env,
    submit_job,
    upload_graph,
    wait_for,
)
from tests.support.redis import REDIS_URL, require_redis

pytestmark = pytest.mark.slow

CAP, LATENCY_MS, ITEMS = 3, 300, 30


def fast_alias(server: ServerProcess) -> dict[str, Any]:
    items = server.client.get("/v1/endpoints").json()["items"]
    found: dict[str, Any] = next(item for item in items if item["alias"] == "fast")
    return found


def holding(server: ServerProcess) -> dict[str, Any] | None:
    """The alias's shared view once every slot is held, else ``None``."""
    shared: dict[str, Any] = fast_alias(server)["shared"]
    return shared if shared["slots"]["used"] == CAP else None


def samples(server: ServerProcess, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    text = server.client.get("/metrics").text
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    }


def test_the_http_process_shows_the_runners_leases(
    fake_llm: FakeLLM, running: Servers, tmp_path: Path
) -> None:
    require_redis()
    fake_llm.configure(latency_ms=LATENCY_MS)
    endpoints = endpoints_for(tmp_path / "endpoints.yaml", fake_llm.base_url, "view", CAP)
    env = server_env(
        sqlite_url(tmp_path / "service.sqlite"),
        endpoints,
        limiter_backend="redis",
        redis_url=REDIS_URL,
        redis_prefix=f"test:{uuid.uuid4().hex[:12]}",
    )
    started = time.monotonic()
    server = running.start("view", env)
    print(f"\nserver ready after {time.monotonic() - started:.1f}s")
    graph_id = upload_graph(server.client, ONE_CALL)
    submit_job(server.client, graph_id, [{"doc1": f"item {i}"} for i in range(ITEMS)])
    shared = wait_for(lambda: holding(server), 30, what="the runner to hold every slot")
    print(f"slots held after {time.monotonic() - started:.1f}s")
    assert shared["source"] == "store"
    assert (shared["slots"]["limit"], shared["slots"]["used"]) == (CAP, CAP)
    [(holder, held)] = shared["slots"]["holders"].items()
    host, _, pid = holder.rpartition("-")
    assert (host, held) == (socket.gethostname(), CAP)
    assert int(pid) in server.pids - {server.pid}  # the runner child, not the HTTP process
    assert (shared["learned_rpm"], shared["learned_tpm"], shared["blocked_until"]) == (
        None,
        None,
        None,
    )
    assert fast_alias(server)["state"] is None  # the HTTP process itself called nothing
    fast = (("alias", "fast"),)
    assert samples(server, "inf_shared_slots_limit")[fast] == CAP
    assert samples(server, "inf_shared_lease_holders")[fast] == 1
    assert 0 < samples(server, "inf_shared_slots_used")[fast] <= CAP
    assert samples(server, "inf_ratelimit_fallback") == {
        (("process", "api"),): 0.0,
        (("process", "runner"),): 0.0,
    }
