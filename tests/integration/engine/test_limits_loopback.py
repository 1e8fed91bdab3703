"""Limits measured where they matter: at the server."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest

from app.engine import InferenceModule, LLMInference, run, run_batch
from tests.support.engine import MakeManager
from tests.support.fake_llm import FakeLLM


def max_in_window(times: list[float], window: float) -> int:
    """Most arrivals inside any half-open window [t, t + window) starting at an arrival."""
    times = sorted(times)
    best, start = 0, 0
    for end, moment in enumerate(times):
        while moment - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


def test_window_counter() -> None:
    assert max_in_window([0.0, 0.5, 59.9, 60.0, 60.1], 60.0) == 4  # [0.5, 60.5)
    assert max_in_window([0.0, 60.0, 120.0], 60.0) == 1
    assert max_in_window([0.0, 1.0, 2.0], 1.0) == 1


@pytest.mark.slow
async def test_rpm_cap_holds_in_every_window_and_server_never_429s(
    fake_llm: FakeLLM, endpoints: MakeManager
) -> None:
    fake_llm.configure(rpm=600, rate_window_s=60)
    manager = endpoints(fast={"rpm": 600, "max_concurrent": 64})
    results = await run_batch(
        LLMInference("fast"), [f"q{i}" for i in range(660)], resources=manager
    )
    assert all(r.ok for r in results)
    log = fake_llm.log()
    prompts = Counter(entry["prompt"] for entry in log)
    assert prompts == Counter(f"q{i}" for i in range(660)), "calls not made exactly once each"
    assert {entry["status"] for entry in log} == {200}
    assert max_in_window([entry["t_arrival"] for entry in log], 60.0) <= 600


async def test_unknown_lower_server_cap_is_learned(
    fake_llm: FakeLLM, endpoints: MakeManager
) -> None:
    """The client believes 12,000/min; the server allows 2,400/min (40 per one-second window)."""
    fake_llm.configure(rpm=2400, rate_window_s=1)
    manager = endpoints(fast={"rpm": 12000, "max_concurrent": 32})
    results = await run_batch(
        LLMInference("fast"), [f"q{i}" for i in range(300)], resources=manager
    )
    assert all(r.ok for r in results), [r.error for r in results if not r.ok][:3]
    statuses = [entry["status"] for entry in fake_llm.log()]
    assert statuses.count(200) == 300
    third = len(statuses) // 3
    early, late = statuses[:third].count(429) / third, statuses[-third:].count(429) / third
    assert statuses[:third].count(429) > 0
    assert late < early


class Pair(InferenceModule):
    def __init__(self) -> None:
        super().__init__()
        self.a = LLMInference("fast", system_prompt="a")
        self.b = LLMInference("fast", system_prompt="b")

    def forward(self, x: str) -> Any:
        return self.a(x), self.b(x)


async def test_runs_and_batches_on_one_config_share_the_concurrency_cap(
    fake_llm: FakeLLM, endpoints: MakeManager
) -> None:
    from app.engine import ResourceConfig, close_shared_managers

    fake_llm.configure(latency_ms=40)
    config = ResourceConfig.from_dict(
        {
            "endpoints": {
                "fast": {
                    "provider": "openai-compatible",
                    "model": "m",
                    "base_url": fake_llm.base_url,
                    "max_concurrent": 4,
                }
            }
        }
    )
    module = Pair().bind(ResourceConfig.model_validate(config.model_dump()))  # equal, not identical
    try:
        await asyncio.gather(
            run(Pair(), "r1", resources=config),
            run(Pair(), "r2", resources=config),
            module([f"b{i}" for i in range(12)]),
        )
    finally:
        await close_shared_managers()
    stats = fake_llm.stats()
    assert stats["requests"] == 2 * 2 + 12 * 2
    assert stats["peak_in_flight"] == 4
