"""``INF_METRICS_PORT``: a real ``inf-engine worker`` serves ``GET /metrics`` with its runner
process's families (limiter state per alias, result queue, runner up), behind
``INF_METRICS_TOKEN`` when that is set."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.db.repositories import graphs, tenants
from app.db.session import create_engine, session_factory
from tests.support.db import seed_job
from tests.support.fake_llm import FakeLLM
from tests.support.graphs import ECHO_GRAPH
from tests.support.processes import (
    Servers,
    endpoints_for,
    free_port,
    launch_worker,
    server_env,
    wait_for,
    wait_worker,
)

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
TOKEN = "scrape-secret"
ITEMS = 5


async def queue_echo_job(database_url: str) -> None:
    """A queued job of ``ITEMS`` echo items, stored directly (no API process here)."""
    engine = create_engine(database_url)
    try:
        async with session_factory(engine)() as session:
            owner = await tenants.get_or_create_tenant(session, "acme")
            digest = hashlib.sha256(b"echo").hexdigest()
            _, version, _ = await graphs.add_version(session, owner.id, "echo", ECHO_GRAPH, digest)
            await seed_job(session, owner.id, version.id, [{"text": f"t{i}"} for i in range(ITEMS)])
            await session.commit()
    finally:
        await engine.dispose()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_a_worker_serves_its_runner_metrics_on_its_metrics_port(
    fresh_postgres: str, fake_llm: FakeLLM, running: Servers, tmp_path: Path
) -> None:
    port = free_port()
    endpoints = endpoints_for(tmp_path / "w.yaml", fake_llm.base_url, "w", max_concurrent=7)
    env = server_env(
        fresh_postgres, endpoints, auto_migrate="false", metrics_port=port, metrics_token=TOKEN
    )
    worker = launch_worker("w", env, tmp_path)
    running.started.append(worker)
    wait_worker(worker)
    url = f"http://127.0.0.1:{port}/metrics"
    asyncio.run(queue_echo_job(fresh_postgres))
    scrape = {"headers": {"Authorization": f"Bearer {TOKEN}"}, "timeout": 30}

    def called() -> dict[tuple[str, tuple[tuple[str, str], ...]], float] | None:
        found = samples(httpx.get(url, **scrape).text)  # type: ignore[arg-type]
        calls = sum(
            value
            for (name, labels), value in found.items()
            if name == "inf_llm_requests_total" and ("alias", "fast") in labels
        )
        return found if calls >= ITEMS else None

    found = wait_for(called, 120, interval_s=0.5, what="the runner's calls in /metrics")
    refused = httpx.get(url, timeout=30)

    assert refused.status_code == 401, refused.text
    names = {name for name, _ in found}
    assert found["inf_runner_up", ()] == 1
    assert ("inf_result_queue_rows", (("process", "runner"),)) in found
    by_alias = {name for (name, labels) in found if ("alias", "fast") in labels}
    assert {"inf_llm_in_flight", "inf_llm_waiting"} <= by_alias, sorted(by_alias)  # its limiter
    assert "inf_runner_deaths_total" in names  # the worker's own family, merged in
