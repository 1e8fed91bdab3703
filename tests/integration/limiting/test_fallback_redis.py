"""The Redis of the shared limiter goes away mid-run and comes back (a server of the test's own).

Calls go on, limited to ``INF_LIMITER_FALLBACK_SHARE`` of the alias's concurrency cap, as the
fake LLM server's peak in flight shows; the log and ``inf_ratelimit_fallback`` say so; with the
Redis back on the same port, the process is limited by the shared cap again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.db.session import create_engine, session_factory
from app.engine import LLMRequest, ResourceConfig, ResourceManager
from app.engine.resources.manager import Endpoint
from app.services.limiting.backends import build_rate_store, close_rate_store
from app.services.limiting.fallback import FallbackRateStore
from app.services.observability.live_metrics import process_metrics
from app.settings import Settings
from tests.support.fake_llm import FakeLLM
from tests.support.processes import free_port

pytestmark = pytest.mark.slow

CAP, SHARE, CALLERS, LATENCY_MS = 8, 0.5, 16, 100
PHASE_S = 1.0


class OwnRedis:
    """``redis-server`` on a fixed loopback port, without persistence, that can be killed."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no"]
        self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while (
            subprocess.run(
                ["redis-cli", "-p", str(self.port), "ping"], capture_output=True, check=False
            ).stdout.strip()
            != b"PONG"
        ):
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def own_redis() -> Iterator[OwnRedis]:
    server = OwnRedis()
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
async def limited(own_redis: OwnRedis, fake_llm: FakeLLM) -> AsyncIterator[dict[str, Any]]:
    """A resource manager on the fake server, sharing its cap through the test's Redis."""
    fake_llm.configure(latency_ms=LATENCY_MS)
    settings = Settings(
        limiter_backend="redis",
        redis_url=f"redis://127.0.0.1:{own_redis.port}/0",
        limiter_fallback_share=SHARE,
        limiter_store_timeout_s=0.5,
        limiter_probe_s=0.5,
    )
    endpoint = {"provider": "openai-compatible", "base_url": fake_llm.base_url}
    endpoint |= {"model": "fallback-fast", "max_concurrent": CAP}
    config = ResourceConfig.from_dict({"endpoints": {"fast": endpoint}})
    engine = create_engine("sqlite+aiosqlite:///:memory:")
    store = build_rate_store(settings, session_factory(engine), config)
    assert isinstance(store, FallbackRateStore)
    resources = ResourceManager(config, shared_store=store)
    metrics = process_metrics("runner", resources, engine, store)
    yield {"store": store, "endpoint": resources.endpoint("fast"), "metrics": metrics}
    await resources.aclose()
    await close_rate_store(store)
    await engine.dispose()


async def one_call(endpoint: Endpoint) -> None:
    """One model call admitted as the engine admits it: local gate, then the shared store."""
    permit = await endpoint.acquire(tokens=10)
    try:
        request = LLMRequest(model="fallback-fast", system="s", prompt="p", max_tokens=4)
        endpoint.succeeded(permit, await endpoint.client.complete(request))
    finally:
        await endpoint.leave_shared(permit)


async def callers(endpoint: Endpoint, stop: asyncio.Event) -> None:
    async def loop() -> None:
        while not stop.is_set():
            await one_call(endpoint)

    await asyncio.gather(*(loop() for _ in range(CALLERS)))


async def phase_peak(fake_llm: FakeLLM) -> tuple[int, int]:
    """(peak in flight, calls) at the fake server over one phase, calls of before drained."""
    await asyncio.sleep(3 * LATENCY_MS / 1000)
    fake_llm.reset()
    await asyncio.sleep(PHASE_S)
    stats = fake_llm.stats()
    return stats["peak_in_flight"], stats["requests"]


async def until(check: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


def fallback_gauge(limited: dict[str, Any]) -> float:
    text = limited["metrics"].exposition()
    for family in text_string_to_metric_families(text):
        if family.name == "inf_ratelimit_fallback":
            return float(family.samples[0].value)
    raise AssertionError("no inf_ratelimit_fallback family")


async def test_calls_go_on_within_the_local_share_and_return_to_the_shared_cap(
    limited: dict[str, Any],
    own_redis: OwnRedis,
    fake_llm: FakeLLM,
    caplog: pytest.LogCaptureFixture,
) -> None:
    store: FallbackRateStore = limited["store"]
    stop = asyncio.Event()
    running = asyncio.create_task(callers(limited["endpoint"], stop))
    try:
        with caplog.at_level(logging.WARNING, "app.services.limiting.fallback"):
            shared_peak, _ = await phase_peak(fake_llm)
            own_redis.kill()
            await until(lambda: store.status.active, 5, "the fallback")
            fallback_peak, fallback_calls = await phase_peak(fake_llm)
            gauge_in_fallback = fallback_gauge(limited)
            own_redis.start()
            await until(lambda: not store.status.active, 5, "the store to be used again")
            back_peak, _ = await phase_peak(fake_llm)
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(running, 10)
    print(f"\npeak in flight: shared {shared_peak}, fallback {fallback_peak}, back {back_peak}")
    assert shared_peak == CAP
    assert fallback_calls > 0
    assert 0 < fallback_peak <= int(CAP * SHARE)
    assert back_peak > int(CAP * SHARE)
    assert back_peak <= CAP
    assert (gauge_in_fallback, fallback_gauge(limited)) == (1.0, 0.0)
    assert store.status.decisions["fast"] > 0
    lost, back = [record.getMessage() for record in caplog.records]
    assert lost.startswith("shared rate store unreachable")
    assert back.startswith("shared rate store answers again")
