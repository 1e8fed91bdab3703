"""Limits that learn the real rate, shared by two runtimes through one store, over real HTTP.

Each runtime is a :class:`ResourceManager` with a store of its own on the same Redis or Postgres
(as two processes have), calling the fake LLM server, whose cap is read at the server:

- a cap of 120 rpm that states nothing (429s carry only ``Retry-After``): within 60 s the two
  together reach at least 90% of it, and after that at most 2% of calls are 429s;
- the same cap stated in ``x-ratelimit-*`` headers: at most 1% of calls are 429s;
- after a 429 burst and an idle time of five decay time constants (scaled: the default
  ``INF_LIMITER_LEARN_DECAY_S`` is 60 s, so 5 minutes), a new job starts at the configured rate;
  without the decay it would not.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from app.db.session import create_engine, session_factory
from app.engine import LLMRequest, ResourceConfig, ResourceManager
from app.engine.errors import LLMCallError
from app.engine.resources.manager import Endpoint
from app.engine.resources.shared import SharedRateStore
from app.services.limiting.backends import build_rate_store, close_rate_store
from app.settings import Settings
from tests.support.fake_llm import FakeLLM
from tests.support.redis import REDIS_URL, require_redis

pytestmark = pytest.mark.slow

CAP_RPM, CONFIGURED_RPM, CALLERS, LATENCY_MS = 120, 600, 4, 50
ALIAS, MODEL = "capped", "learn-capped"


@dataclass
class Runtime:
    """One "process": its resource manager and its own store on the shared server."""

    resources: ResourceManager
    store: SharedRateStore

    @property
    def endpoint(self) -> Endpoint:
        return self.resources.endpoint(ALIAS)


@pytest.fixture(params=["redis", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> tuple[str, str]:
    """(``INF_LIMITER_BACKEND``, the database URL the runtimes use)."""
    if request.param == "postgres":
        return "postgres", str(request.getfixturevalue("postgres_url"))
    require_redis()
    return "redis", "sqlite+aiosqlite:///:memory:"


@pytest.fixture
async def runtimes(
    backend: tuple[str, str], fake_llm: FakeLLM
) -> AsyncIterator[Callable[..., list[Runtime]]]:
    """Builds two runtimes sharing one store (settings as given), closed after the test."""
    name, url = backend
    engine = create_engine(url)
    built: list[Runtime] = []
    prefix = f"test:learn:{uuid.uuid4().hex[:12]}"
    endpoint = {"provider": "openai-compatible", "base_url": fake_llm.base_url, "model": MODEL}
    endpoint |= {"rpm": CONFIGURED_RPM, "max_concurrent": CALLERS}
    config = ResourceConfig.from_dict({"endpoints": {ALIAS: endpoint}})

    def build(**settings: Any) -> list[Runtime]:
        options = Settings(
            limiter_backend=name, redis_url=REDIS_URL, redis_prefix=prefix, **settings
        )
        for _ in range(2):
            store = build_rate_store(options, session_factory(engine), config)
            assert store is not None
            built.append(Runtime(ResourceManager(config, shared_store=store), store))
        return built[-2:]

    if name == "postgres":
        from tests.support.db import truncate_all

        await truncate_all(engine)
    yield build
    for runtime in built:
        await runtime.resources.aclose()
        await close_rate_store(runtime.store)
    await engine.dispose()


async def one_call(endpoint: Endpoint) -> None:
    """One model call admitted as the engine admits it; a 429 is booked as the engine does."""
    permit = await endpoint.acquire(tokens=10)
    try:
        request = LLMRequest(model=MODEL, system="s", prompt="p", max_tokens=4)
        try:
            response = await endpoint.client.complete(request)
        except LLMCallError as error:
            endpoint.failed(permit, error)
        else:
            endpoint.succeeded(permit, response)
    finally:
        await endpoint.leave_shared(permit)


async def drive(runtimes: list[Runtime], seconds: float) -> None:
    """``CALLERS`` callers per runtime calling as fast as they are let, for ``seconds``."""
    stop = asyncio.Event()

    async def caller(endpoint: Endpoint) -> None:
        while not stop.is_set():
            await one_call(endpoint)

    tasks = [asyncio.create_task(caller(rt.endpoint)) for rt in runtimes for _ in range(CALLERS)]
    await asyncio.sleep(seconds)
    stop.set()
    for task in tasks:  # NOTE: a caller waiting for the budget would call later: not in this run
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def arrivals(fake_llm: FakeLLM) -> list[tuple[float, int]]:
    """(arrival seconds after the first, status) of every answered call, in order."""
    entries = sorted(
        (entry["t_arrival"], entry["status"]) for entry in fake_llm.log() if entry["status"]
    )
    first = entries[0][0]
    return [(at - first, status) for at, status in entries]


def share_429(calls: list[tuple[float, int]]) -> float:
    return sum(status == 429 for _, status in calls) / max(1, len(calls))


async def test_an_undeclared_cap_is_learned_within_a_minute(
    runtimes: Callable[..., list[Runtime]], fake_llm: FakeLLM
) -> None:
    fake_llm.configure(rpm=CAP_RPM, rate_headers="retry_after", latency_ms=LATENCY_MS)
    pair = runtimes()
    await drive(pair, 125.0)
    calls = arrivals(fake_llm)
    second_minute = [(at, s) for at, s in calls if 60.0 <= at < 120.0]
    served = sum(status == 200 for _, status in second_minute)
    after = [(at, s) for at, s in calls if at >= 60.0]
    learned = (await pair[0].store.snapshot(ALIAS)).learned_rpm
    print(f"\nsilent cap: {served} served in the second minute, {share_429(after):.2%} 429s after")
    print(f"first minute: {share_429([c for c in calls if c[0] < 60]):.2%} 429s; learned {learned}")
    print("429s after 60 s at", [round(at, 1) for at, status in after if status == 429])
    assert served >= 0.9 * CAP_RPM
    assert share_429(after) <= 0.02
    assert learned is not None
    assert learned < CONFIGURED_RPM


async def test_a_stated_cap_is_kept_from_the_first_minute_on(
    runtimes: Callable[..., list[Runtime]], fake_llm: FakeLLM
) -> None:
    fake_llm.configure(rpm=CAP_RPM, rate_headers="full", latency_ms=LATENCY_MS)
    pair = runtimes()
    await drive(pair, 90.0)
    calls = arrivals(fake_llm)
    served = sum(status == 200 for at, status in calls if 60.0 <= at < 90.0)
    snapshot = await pair[1].store.snapshot(ALIAS)
    print(f"\nstated cap: {len(calls)} calls, {share_429(calls):.2%} 429s, {served} in 60-90 s")
    print(f"learned {snapshot.learned_rpm}")
    assert share_429(calls) <= 0.01
    assert served >= 0.9 * CAP_RPM / 2
    assert snapshot.learned_rpm == CAP_RPM


DECAY_S, BURST_WINDOW_S = 1.0, 5.0
# NOTE: the 429 pause (up to the server's window) is not idle time; five decays after it.
IDLE_S = BURST_WINDOW_S + 5 * DECAY_S


async def burst_then_idle_then_job(
    runtimes: Callable[..., list[Runtime]], fake_llm: FakeLLM, decay_s: float
) -> tuple[float | None, int]:
    """The learned rpm after a 429 burst, and the calls a new job makes in its first 3 s
    after ``IDLE_S`` idle (the server no longer capped: only our limiter holds it back)."""
    pair = runtimes(limiter_learn_decay_s=decay_s)
    fake_llm.configure(rpm=CAP_RPM, rate_window_s=BURST_WINDOW_S, rate_headers="retry_after")
    await drive(pair, 3.0)
    learned = (await pair[0].store.snapshot(ALIAS)).learned_rpm
    fake_llm.configure(latency_ms=LATENCY_MS)
    await asyncio.sleep(IDLE_S)
    await drive(pair, 3.0)
    return learned, fake_llm.stats()["requests"]


async def test_after_a_burst_and_idle_time_a_new_job_starts_at_the_configured_rate(
    runtimes: Callable[..., list[Runtime]], fake_llm: FakeLLM
) -> None:
    learned, calls = await burst_then_idle_then_job(runtimes, fake_llm, DECAY_S)
    # 600 rpm: a burst of 10, then 9.8 a second, so about 39 calls in 3 s
    print(f"\nlearned {learned} rpm after the burst; {calls} calls in the new job's first 3 s")
    assert learned is not None
    assert learned < CONFIGURED_RPM / 2
    assert calls >= 0.9 * (10 + 3 * CONFIGURED_RPM / 60)


async def test_without_the_decay_a_new_job_would_start_at_the_learned_rate(
    runtimes: Callable[..., list[Runtime]], fake_llm: FakeLLM
) -> None:
    learned, calls = await burst_then_idle_then_job(runtimes, fake_llm, 3600.0)
    print(f"\nlearned {learned} rpm; {calls} calls in 3 s without decay")
    assert learned is not None
    assert calls < 0.5 * (10 + 3 * CONFIGURED_RPM / 60)
