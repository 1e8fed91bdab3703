"""Role selection by model name, purity, variants, the judge and the default aliases."""

from __future__ import annotations

import asyncio
import math
import random

import pytest

from app.engine import LLMRequest, ResourceConfig, TransientLLMError
from app.engine.optimization.prompts import (
    JUDGE_SYSTEM,
    judge_request,
    parse_critiques,
    parse_improved_value,
    parse_score,
    with_retry_note,
)
from app.llm.simulated import SimulatedClient, simulate
from app.llm.simulation import SimulatedOutage, answer
from app.llm.simulation.counting import generate
from app.llm.simulation.diagnoses import OTHER_CATEGORY, say
from app.services.endpoints import SIMULATED
from tests.support.simulation import critic_for, optimizer_for, parameter, verdict

SEED = "You answer questions about things. End your reply with a final line 'Answer: N'."
ITEMS = generate(60, seed=7)


def critic_requests() -> list[str]:
    found = []
    for item in ITEMS:
        output = answer("sim-task", SEED, item.question) or ""
        found.append(
            critic_for(
                "count",
                SEED,
                item.question,
                output,
                [verdict(output, item.expected)],
                [parameter("instructions", SEED)],
            )
        )
    return found


def mixed_requests() -> list[LLMRequest]:
    task = [LLMRequest("sim-task", SEED, item.question) for item in ITEMS]
    critic = [LLMRequest("sim-critic", "", text) for text in critic_requests()]
    texts = [say(OTHER_CATEGORY, item.entries[0].phrase) for item in ITEMS]
    optimizer = [
        LLMRequest("sim-optimizer", "", optimizer_for("p", SEED, texts[:n])) for n in range(1, 20)
    ]
    return task + critic + optimizer


async def test_replies_are_a_pure_function_of_the_request_in_any_order() -> None:
    requests = mixed_requests()
    in_order = [simulate(r, r.model).text for r in requests]
    shuffled = list(enumerate(requests))
    random.Random(1).shuffle(shuffled)
    clients = {r.model: SimulatedClient(r.model) for r in requests}
    replies = await asyncio.gather(*(clients[r.model].complete(r) for _, r in shuffled))
    by_index = {i: reply.text for (i, _), reply in zip(shuffled, replies, strict=True)}
    assert [by_index[i] for i in range(len(requests))] == in_order


def test_token_counts_are_characters_over_four() -> None:
    request = LLMRequest("sim-task", SEED, ITEMS[0].question)
    response = simulate(request, "sim-task")
    assert response.output_tokens == math.ceil(len(response.text) / 4)
    assert response.input_tokens == math.ceil(len(SEED) / 4) + math.ceil(len(ITEMS[0].question) / 4)


def test_names_that_are_no_simulated_role_keep_the_generic_reply() -> None:
    assert simulate(LLMRequest("sim-fast", "", "Cats purr."), "sim-fast").text.startswith(
        "[simulated #"
    )
    unknown_step = simulate(LLMRequest("sim-task", SEED, "Write a poem."), "sim-task")
    assert unknown_step.text.startswith("[simulated #")


async def test_the_failing_critic_raises_a_transient_error_on_every_call() -> None:
    client = SimulatedClient("sim-critic:fail")
    for text in critic_requests()[:3]:
        with pytest.raises(SimulatedOutage) as caught:
            await client.complete(LLMRequest("sim-critic:fail", "", text))
        assert isinstance(caught.value, TransientLLMError)


def test_flaky_replies_lose_their_tags_for_about_one_request_in_ten() -> None:
    requests = critic_requests() * 5
    requests = [f"{text}\n<!-- {n} -->" for n, text in enumerate(requests)]
    broken = [
        t
        for t in requests
        if parse_critiques(answer("sim-critic:flaky", "", t) or "", ["instructions"]) is None
    ]
    assert 0.04 < len(broken) / len(requests) < 0.17
    for text in broken[:5]:  # the same request fails again; the retry note is a new draw
        assert parse_critiques(answer("sim-critic:flaky", "", text) or "", ["instructions"]) is None
    retried = [with_retry_note(t, 2) for t in broken]
    parsed = [
        parse_critiques(answer("sim-critic:flaky", "", t) or "", ["instructions"]) for t in retried
    ]
    assert sum(p is not None for p in parsed) > len(broken) / 2


def test_the_plain_optimizer_is_never_flaky() -> None:
    texts = [say(OTHER_CATEGORY, "a drum")]
    for n in range(50):
        request = optimizer_for("p", f"{SEED} Variant {n}.", texts)
        assert parse_improved_value(answer("sim-optimizer", "", request) or "") is not None


@pytest.mark.parametrize(
    ("output", "expected", "score"),
    [("Counting...\nAnswer: 4", "4", 1.0), ("Answer: 5", "4", 0.3), ("It is 4.", "4", 0.0)],
)
def test_the_judge_grades_against_the_expected_answer(
    output: str, expected: str, score: float
) -> None:
    request = judge_request("Correct count.", {"q": "x"}, output, expected, has_expected=True)
    parsed = parse_score(answer("sim-judge", JUDGE_SYSTEM, request) or "")
    assert parsed is not None
    assert parsed[0] == score


def test_the_judge_grades_a_rubric_by_the_share_of_criteria_met() -> None:
    rubric = "- mentions the kettle\n- mentions the warranty\n- ends with a call to action"
    request = judge_request(rubric, {}, "The Zephyr kettle has a two-year warranty.")
    parsed = parse_score(answer("sim-judge", JUDGE_SYSTEM, request) or "")
    assert parsed is not None
    score, critique = parsed
    assert score == 0.7  # two of three criteria: round(10 * 2 / 3) = 7
    assert "call to action" in critique
    assert "warranty" not in critique


def test_the_default_offline_aliases_include_the_optimization_roles() -> None:
    config = ResourceConfig.from_dict(SIMULATED)
    models = {
        alias: config.endpoints[alias].model for alias in ("task", "critic", "judge", "optimizer")
    }
    assert models == {
        "task": "sim-task",
        "critic": "sim-critic",
        "judge": "sim-judge",
        "optimizer": "sim-optimizer",
    }
