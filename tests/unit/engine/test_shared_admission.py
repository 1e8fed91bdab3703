"""Resource managers given one shared rate store keep each alias's limits together.

Two managers stand for two processes; the store is the in-memory one (the Redis and Postgres
stores pass the same contract tests, and tests/e2e/test_shared_limits.py runs them in ``serve``).
"""

from __future__ import annotations

import asyncio

import pytest

from app.engine import ExecutionError, LLMInference, RateLimitedError, run
from app.engine.clock import FakeClock
from app.engine.llm import LLMResponse
from app.engine.resources.manager import ResourceManager
from app.engine.resources.shared import AliasLimits, InMemoryRateStore
from app.engine.testing import ScriptedLLM, scripted_manager
from tests.support.polling import until


async def calls_through(managers: list[ResourceManager], count: int) -> None:
    await asyncio.gather(
        *(
            run(LLMInference("fast"), f"q{n}", resources=managers[n % len(managers)])
            for n in range(count)
        )
    )


async def test_two_managers_on_one_store_share_the_concurrency_cap() -> None:
    model = ScriptedLLM(latency_s=0.03)
    store = InMemoryRateStore({"fast": AliasLimits(max_concurrent=3)})
    managers = [scripted_manager({"fast": model}, store, max_concurrent=3) for _ in range(2)]
    await calls_through(managers, 18)
    assert (len(model.calls), model.peak_in_flight) == (18, 3)
    assert await store.acquire_slot("fast", "after", ttl_s=1.0), "every lease was given back"


async def test_without_a_store_each_manager_keeps_only_its_own_cap() -> None:
    model = ScriptedLLM(latency_s=0.03)
    managers = [scripted_manager({"fast": model}, max_concurrent=3) for _ in range(2)]
    await calls_through(managers, 18)
    assert model.peak_in_flight == 6


async def test_a_429_pauses_every_manager_on_the_store() -> None:
    model = ScriptedLLM(lambda request: RateLimitedError("429", retry_after=30.0))
    store = InMemoryRateStore({"fast": AliasLimits(max_concurrent=2)}, clock=FakeClock())
    manager = scripted_manager({"fast": model}, store, max_concurrent=2, max_rate_limit_retries=0)
    with pytest.raises(ExecutionError):
        await run(LLMInference("fast"), "q", resources=manager)
    assert await store.blocked_for("fast") == 30.0


async def test_unused_reserved_tokens_are_given_back_to_the_store() -> None:
    model = ScriptedLLM(lambda request: LLMResponse("ok", 0, 0, "stop", "m"))
    limits = {"fast": AliasLimits(tpm=6000, max_concurrent=2)}  # 100 tokens at once
    store = InMemoryRateStore(limits, clock=FakeClock())  # the store's time stands still
    manager = scripted_manager({"fast": model}, store, max_concurrent=2, tpm=6000)
    await run(LLMInference("fast"), "q", resources=manager)
    assert (await store.acquire("fast", tokens=100)).granted, "the 256-token estimate came back"


async def test_a_cancelled_call_gives_its_lease_back() -> None:
    model = ScriptedLLM(latency_s=30.0)
    store = InMemoryRateStore({"fast": AliasLimits(max_concurrent=1)})
    manager = scripted_manager({"fast": model}, store, max_concurrent=1)
    task = asyncio.create_task(run(LLMInference("fast"), "q", resources=manager))

    async def calling() -> bool:
        return model.in_flight > 0

    await until(calling, timeout_s=5.0)
    assert not await store.acquire_slot("fast", "other", ttl_s=1.0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await store.acquire_slot("fast", "other", ttl_s=1.0)
