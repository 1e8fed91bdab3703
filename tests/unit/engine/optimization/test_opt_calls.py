"""The optimizer's model calls: metered per role, stopped by the budget before they are made,
retried with a RETRY note while the reply does not parse."""

from __future__ import annotations

import asyncio

import pytest

from app.engine import ExecutionError, load_graph
from app.engine.errors import PermanentLLMError
from app.engine.llm import LLMResponse
from app.engine.optimization import (
    Budget,
    BudgetExhausted,
    Feedback,
    Limits,
    Meter,
    Role,
    ask,
    ask_parsed,
    current_meter,
    metering,
)
from app.engine.optimization.prompts import RETRY_NOTE
from app.engine.resources.manager import ResourceManager
from app.engine.testing import ScriptedLLM, scripted_manager
from tests.support.optimization import LINEAR, forward, tagging_critic


def sized(text: str, tokens_in: int = 10, tokens_out: int = 4) -> LLMResponse:
    return LLMResponse(text, tokens_in, tokens_out, "stop", "scripted")


async def test_ask_returns_the_text_and_usage_and_the_meter_counts_it() -> None:
    model = ScriptedLLM(lambda request: sized(f"re: {request.prompt}"))
    resources = scripted_manager({"critic": model})
    meter = Meter()

    with metering(meter):
        reply = await ask("critic", "sys", "hello", role=Role.BACKWARD, resources=resources)

    assert (reply.text, reply.attempts) == ("re: hello", 1)
    assert reply.usage is not None
    assert (reply.usage.input_tokens, reply.usage.output_tokens) == (10, 4)
    assert (model.calls[0].system, model.calls[0].prompt) == ("sys", "hello")
    spent = meter.by_role[Role.BACKWARD]
    assert (spent.calls, spent.input_tokens, spent.output_tokens) == (1, 10, 4)
    assert meter.by_role[Role.JUDGE].calls == 0


async def test_without_a_meter_nothing_is_counted() -> None:
    resources = scripted_manager({"critic": ScriptedLLM(lambda request: "ok")})
    assert current_meter() is None
    reply = await ask("critic", "", "x", role=Role.BACKWARD, resources=resources)
    assert reply.text == "ok"


async def test_metering_blocks_nest_and_restore() -> None:
    outer, inner = Meter(), Meter()
    with metering(outer):
        with metering(inner):
            assert current_meter() is inner
        assert current_meter() is outer
    assert current_meter() is None


async def test_a_failed_call_counts_one_call_and_no_tokens() -> None:
    resources = scripted_manager({"critic": ScriptedLLM(lambda r: PermanentLLMError("gone"))})
    meter = Meter()
    with metering(meter), pytest.raises(ExecutionError, match="gone"):
        await ask("critic", "", "x", role=Role.BACKWARD, resources=resources)
    spent = meter.by_role[Role.BACKWARD]
    assert (spent.calls, spent.tokens) == (1, 0)


async def test_budget_exhausted_stops_a_call_before_it_is_made() -> None:
    model = ScriptedLLM(lambda request: "ok")
    resources = scripted_manager({"judge": model})
    meter = Meter(Budget(roles={Role.JUDGE: Limits(max_calls=1)}))
    with metering(meter):
        await ask("judge", "", "x", role=Role.JUDGE, resources=resources)
        with pytest.raises(BudgetExhausted) as caught:
            await ask("judge", "", "y", role=Role.JUDGE, resources=resources)
    assert caught.value.cap == "judge.max_calls"
    assert len(model.calls) == 1
    assert meter.by_role[Role.JUDGE].calls == 1


async def test_ask_parsed_retries_with_the_note_and_sums_usage() -> None:
    answers = iter(["no tags", "still none", "<X>7</X>"])
    model = ScriptedLLM(lambda request: sized(next(answers)))
    resources = scripted_manager({"critic": model})
    meter = Meter()

    def parse(text: str) -> int | None:
        return int(text[3:-4]) if text.startswith("<X>") else None

    with metering(meter):
        value, reply = await ask_parsed(
            "critic", "", "go", parse, role=Role.BACKWARD, resources=resources
        )

    assert (value, reply.attempts, reply.text) == (7, 3, "<X>7</X>")
    assert reply.usage is not None
    assert reply.usage.input_tokens == 30
    assert model.calls[0].prompt == "go"
    assert model.calls[1].prompt == f"go\n{RETRY_NOTE.format(attempt=2)}"
    assert model.calls[2].prompt == f"go\n{RETRY_NOTE.format(attempt=3)}"
    assert meter.by_role[Role.BACKWARD].calls == 3


async def test_ask_parsed_gives_none_after_its_attempts() -> None:
    model = ScriptedLLM(lambda request: "never")
    resources = scripted_manager({"critic": model})
    value, reply = await ask_parsed(
        "critic", "", "go", lambda text: None, role=Role.BACKWARD, resources=resources, attempts=2
    )
    assert (value, reply.attempts, len(model.calls)) == (None, 2, 2)


async def test_the_backward_pass_is_metered_as_backward_and_stops_at_its_cap() -> None:
    task = ScriptedLLM(lambda request: "draft")
    critic = ScriptedLLM(tagging_critic)
    resources = scripted_manager({"task": task, "critic": critic})
    record = await forward(load_graph(LINEAR), {"question": "q"}, resources)
    meter = Meter(Budget(roles={Role.BACKWARD: Limits(max_calls=1)}))

    with metering(meter), pytest.raises(BudgetExhausted):
        await Feedback(0.0, "wrong", record).backward()

    assert len(critic.calls) == 1  # the final node's critic ran; the draft's was refused
    assert meter.by_role[Role.BACKWARD].calls == 1
    assert meter.by_role[Role.TASK].calls == 0  # the forward pass is the trainer's to meter


async def test_concurrent_calls_never_pass_the_cap() -> None:
    model = ScriptedLLM(lambda request: "ok", latency_s=0.01)
    resources = scripted_manager({"critic": model})
    meter = Meter(Budget(max_calls=2))

    async def one(i: int) -> str:
        reply = await ask("critic", "", f"q{i}", role=Role.BACKWARD, resources=resources)
        return reply.text

    with metering(meter):
        results = await asyncio.gather(*(one(i) for i in range(5)), return_exceptions=True)

    assert sum(isinstance(result, BudgetExhausted) for result in results) == 3
    assert len(model.calls) == 2
    assert meter.total.calls == 2


async def asking_until_refused(resources: ResourceManager) -> None:
    for i in range(10):
        await ask("critic", "", f"q{i}", role=Role.BACKWARD, resources=resources)


async def test_concurrent_calls_never_pass_the_tokens_cap() -> None:
    # Before any call returned, each is reserved at its estimate (256 output tokens here).
    model = ScriptedLLM(lambda request: sized("ok", 100, 50), latency_s=0.01)
    resources = scripted_manager({"critic": model})
    meter = Meter(Budget(max_tokens=700))

    async def one(i: int) -> str:
        reply = await ask("critic", "", f"q{i}", role=Role.BACKWARD, resources=resources)
        return reply.text

    with metering(meter):
        results = await asyncio.gather(*(one(i) for i in range(5)), return_exceptions=True)

    caps = [result.cap for result in results if isinstance(result, BudgetExhausted)]
    assert caps
    assert set(caps) == {"max_tokens"}
    assert meter.total.tokens <= 700


async def test_once_a_call_returned_its_size_is_reserved_for_the_next() -> None:
    model = ScriptedLLM(lambda request: sized("ok", 100, 50))
    resources = scripted_manager({"critic": model}, input_price_per_million=1000.0)
    meter = Meter(Budget(roles={Role.BACKWARD: Limits(max_tokens=700, max_cost=1.0)}))

    with metering(meter), pytest.raises(BudgetExhausted) as caught:
        await asking_until_refused(resources)

    assert caught.value.cap == "backward.max_tokens"
    assert len(model.calls) == 4  # 600 tokens spent; a fifth call of 150 would pass 700
    assert meter.total.tokens == 600


async def test_calls_never_pass_the_cost_cap() -> None:
    model = ScriptedLLM(lambda request: sized("ok", 100, 0))
    resources = scripted_manager({"critic": model}, input_price_per_million=1000.0)
    meter = Meter(Budget(max_cost=0.35))  # a call costs 0.1

    with metering(meter), pytest.raises(BudgetExhausted) as caught:
        await asking_until_refused(resources)

    assert caught.value.cap == "max_cost"
    assert len(model.calls) == 3
    assert meter.total.cost <= 0.35
