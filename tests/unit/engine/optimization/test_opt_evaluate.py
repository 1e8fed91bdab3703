"""evaluate(): mean, n, failures and a seeded interval; metering of the pipeline's calls."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from app.engine.errors import ConfigError, PermanentLLMError
from app.engine.llm import LLMResponse
from app.engine.optimization import LLMJudge, VerifierLoss, verifier
from app.engine.optimization.budget import Budget, BudgetExhausted, Limits, Meter
from app.engine.optimization.calls import metering
from app.engine.optimization.evaluate import evaluate
from app.engine.optimization.roles import Role
from app.engine.optimization.stats import paired
from app.engine.testing import ScriptedLLM, scripted_manager
from tests.support.training import RULE, Counter, World, answer_loss, examples, task_reply

VAL = examples(10, start=100)


async def test_evaluate_reports_mean_n_failures_and_an_interval() -> None:
    world = World()
    result = await evaluate(Counter(), VAL, answer_loss(), resources=world.manager)
    assert (result.mean, result.n, result.failures) == (0.5, 10, 0)
    assert result.scores == [1.0, 0.0] * 5
    assert result.low < 0.5 < result.high
    assert result == await evaluate(Counter(), VAL, answer_loss(), resources=world.manager)


async def test_a_failed_forward_scores_zero_and_is_counted() -> None:
    def failing_on_104(request: Any) -> Any:
        return PermanentLLMError("refused") if "item 104" in request.prompt else task_reply(request)

    world = World(task=ScriptedLLM(failing_on_104))
    result = await evaluate(Counter(), VAL, answer_loss(), resources=world.manager)
    assert result.failures == 1
    assert result.scores[4] == 0.0
    assert result.mean == 0.4


async def test_two_versions_on_the_same_items_give_a_paired_delta() -> None:
    world = World()
    seed = await evaluate(Counter(), VAL, answer_loss(), resources=world.manager)
    better = await evaluate(Counter(f"Count. {RULE}"), VAL, answer_loss(), resources=world.manager)
    delta, low, high = paired(seed.scores, better.scores)
    assert delta == 0.5
    assert 0 < low <= delta <= high


async def test_calls_and_tokens_are_metered_under_the_role() -> None:
    world = World()
    meter = Meter()
    with metering(meter):
        await evaluate(Counter(), VAL, answer_loss(), resources=world.manager, role=Role.TASK)
    usage = meter.by_role[Role.TASK]
    assert usage.calls == len(world.task.calls) == 10
    assert usage.input_tokens == sum(len(r.prompt) // 4 for r in world.task.calls)


async def test_no_forward_is_dispatched_past_the_calls_cap() -> None:
    world = World()
    meter = Meter(Budget(max_calls=4))
    with metering(meter), pytest.raises(BudgetExhausted, match="max_calls"):
        await evaluate(Counter(), VAL, answer_loss(), resources=world.manager)
    assert len(world.task.calls) == 4
    assert meter.total.calls == 4


@pytest.mark.parametrize(("cap", "name"), [(Budget(max_tokens=1_000), "max_tokens"),
    (Budget(roles={Role.VALIDATION: Limits(max_cost=0.001)}), "validation.max_cost")])  # fmt: skip
async def test_concurrent_forwards_never_pass_a_tokens_or_cost_cap(cap: Budget, name: str) -> None:
    # Every forward starts before any returns: each is reserved at its estimate.
    def large(request: Any) -> LLMResponse:
        return LLMResponse(task_reply(request), 200, 100, "stop", "scripted")

    world = World(task=ScriptedLLM(large, latency_s=0.01), price_per_million=1.0)
    meter = Meter(cap)
    with metering(meter), pytest.raises(BudgetExhausted) as caught:
        await evaluate(Counter(), VAL, answer_loss(), resources=world.manager)
    assert caught.value.cap == name
    assert 0 < len(world.task.calls) < len(VAL)
    assert meter.total.tokens <= 1_000
    assert meter.total.cost <= 0.001


async def test_a_judge_that_never_scores_fails_its_item_not_the_evaluation() -> None:
    def judge(request: Any) -> str:
        return "Looks fine." if "item 103" in request.prompt else "<SCORE>10</SCORE>"

    world = World(judge=ScriptedLLM(judge))
    loss = LLMJudge("judge", "Is the count right?")
    result = await evaluate(Counter(), VAL, loss, resources=world.manager)
    assert result.failures == 1
    assert result.scores[3] == 0.0
    assert result.scores.count(1.0) == 9
    assert len([r for r in world.judge.calls if "item 103" in r.prompt]) == 3  # asked again


async def test_a_loss_naming_an_unknown_output_stops_the_evaluation() -> None:
    world = World()
    loss = VerifierLoss(verifier("answer_equals", output="nope"))
    with pytest.raises(ConfigError, match="nope"):
        await evaluate(Counter(), VAL, loss, resources=world.manager)


async def test_a_loss_out_of_budget_stops_dispatching_and_nothing_runs_after_the_end() -> None:
    task = ScriptedLLM(task_reply, latency_s=0.01)
    judge = ScriptedLLM(lambda r: "<SCORE>10</SCORE>")
    manager = scripted_manager({"task": task, "judge": judge}, max_retries=0, max_concurrent=2)
    meter = Meter(Budget(roles={Role.JUDGE: Limits(max_calls=2)}))
    loss = LLMJudge("judge", "Is the count right?")
    with metering(meter), pytest.raises(BudgetExhausted, match=r"judge\.max_calls"):
        await evaluate(Counter(), examples(40), loss, resources=manager)
    made = len(task.calls)
    await asyncio.sleep(0.1)
    assert len(task.calls) == made < 40  # it stopped admitting, and left nothing running
    assert meter.by_role[Role.VALIDATION].calls == made
    assert len(judge.calls) == 2
