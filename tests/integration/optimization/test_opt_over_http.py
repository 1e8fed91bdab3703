"""Training over real HTTP: the simulated roles served by the fake OpenAI-compatible server
on loopback, reached through the openai-compatible provider like any real endpoint. The
server's request log is the ground truth for leakage and for the meter's call counts."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest

from app.engine import ResourceConfig, ResourceManager
from app.engine.optimization import (
    Budget,
    SFAOptimizer,
    StopReason,
    TrainingHistory,
    graph_parameters,
)
from tests.support.fake_llm import FakeLLM
from tests.support.sim_tasks import (
    accuracy_on_test,
    analytic,
    canary,
    fake_server_endpoints,
    graph_of,
    splits_of,
    train_task,
    trained,
)

pytestmark = pytest.mark.slow
TASK = "task-a"
SPLITS = splits_of(TASK)


def http_manager(fake_llm: FakeLLM, task: str = "sim-task", retries: int = 0) -> ResourceManager:
    """The simulated roles on the fake server, the task alias on model ``task`` with ``retries``."""
    config = ResourceConfig.from_dict(fake_server_endpoints(fake_llm.base_url, {"task": task}))
    config.endpoints["task"] = config.endpoints["task"].model_copy(update={"max_retries": retries})
    return ResourceManager(config)


@pytest.fixture
async def sim_over_http(fake_llm: FakeLLM) -> AsyncIterator[ResourceManager]:
    """Aliases task, critic and optimizer on the fake server, models sim-task etc."""
    manager = http_manager(fake_llm)
    yield manager
    await manager.aclose()


async def fit(resources: ResourceManager, **options: Any) -> tuple[TrainingHistory, float]:
    graph = graph_of(TASK)
    params = graph_parameters(graph)
    history = await train_task(TASK, graph, SFAOptimizer(params), 1, resources, **options)
    return history, await accuracy_on_test(TASK, trained(graph, params), resources)


def calls_of(history: TrainingHistory) -> int:
    return sum(int(usage["calls"]) for usage in history.usage.values())


async def test_task_a_trains_over_http_and_no_test_item_reaches_critic_or_optimizer(
    fake_llm: FakeLLM, sim_over_http: ResourceManager
) -> None:
    history, after = await fit(sim_over_http)
    log = fake_llm.log()
    test_accuracy_requests = len(SPLITS["test"])
    assert after == analytic(TASK, {"R1", "R2", "R3"}) >= 0.90
    assert calls_of(history) == len(log) - test_accuracy_requests  # the meter saw every call
    by_role = {
        role: [e for e in log if e["model"] == f"sim-{role}"] for role in ("critic", "optimizer")
    }
    assert by_role["critic"]
    assert by_role["optimizer"]
    assert calls_of(history) - history.usage["task"]["calls"] - history.usage["validation"][
        "calls"
    ] == (len(by_role["critic"]) + len(by_role["optimizer"]))
    seen = " ".join(e["system"] + e["prompt"] for entries in by_role.values() for e in entries)
    leaked = [canary(e) for e in SPLITS["val"] + SPLITS["test"] if canary(e) in seen]
    assert leaked == []
    assert any(canary(e) in seen for e in SPLITS["train"])  # the scan can see a canary


async def test_the_calls_cap_holds_against_the_servers_own_count(
    fake_llm: FakeLLM, sim_over_http: ResourceManager
) -> None:
    graph = graph_of(TASK)
    optimizer, budget = SFAOptimizer(graph_parameters(graph)), Budget(max_calls=150)
    history = await train_task(TASK, graph, optimizer, 1, sim_over_http, budget=budget)
    assert history.stop_reason is StopReason.BUDGET_EXHAUSTED
    assert len(fake_llm.log()) == calls_of(history) <= 150


async def test_a_task_endpoint_behind_a_429_and_500_schedule_retries_to_the_same_history(
    fake_llm: FakeLLM, sim_over_http: ResourceManager
) -> None:
    quiet, _ = await fit(sim_over_http)
    fake_llm.reset()
    noisy = http_manager(fake_llm, "sim-task:throttled:errors", retries=3)
    try:
        history, after = await fit(noisy)
        retried = noisy.endpoint("task").metrics.retries
    finally:
        await noisy.aclose()
    statuses = Counter(e["status"] for e in fake_llm.log() if e["model"].startswith("sim-task"))
    assert statuses[429] > 0
    assert statuses[500] > 0
    assert history.to_dict() == quiet.to_dict()
    assert after == analytic(TASK, {"R1", "R2", "R3"})
    assert retried["rate_limited"] == statuses[429]
    assert sum(retried.values()) == statuses[429] + statuses[500]
