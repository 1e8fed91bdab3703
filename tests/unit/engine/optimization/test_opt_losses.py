"""Losses: verifier results normalised to a score and text, the LLM judge's scores parsed,
retried and clamped, and weighted composites."""

from __future__ import annotations

from typing import Any

import pytest

from app.engine import load_graph
from app.engine.errors import MalformedResponseError
from app.engine.llm import LLMRequest
from app.engine.optimization import (
    CompositeLoss,
    LLMJudge,
    Meter,
    Role,
    Verdict,
    VerifierLoss,
    metering,
    verifier,
)
from app.engine.optimization.prompts import RETRY_NOTE
from app.engine.records import ForwardRecord
from app.engine.testing import ScriptedLLM, scripted_manager
from tests.support.optimization import LINEAR, forward


def recorded(outputs: Any, inputs: Any = None) -> ForwardRecord:
    return ForwardRecord(None, inputs or {}, outputs, {}, [])


@pytest.mark.parametrize(
    ("result", "score", "text"),
    [
        (True, 1.0, "The output is correct."),
        (False, 0.0, "The output 'Answer: 41' is wrong; the expected answer is '42'."),
        (0.25, 0.25, "The output scored 0.25; the expected answer is '42'."),
        (1.5, 1.0, "The output scored 1.00; the expected answer is '42'."),
        ((0.5, "Half right."), 0.5, "Half right."),
        (Verdict(0.0, "No."), 0.0, "No."),
    ],
)
async def test_verifier_loss_normalises_what_the_check_returns(
    result: Any, score: float, text: str
) -> None:
    loss = VerifierLoss(lambda output, expected: result)
    feedback = await loss(recorded("Answer: 41"), "42", example="e1")
    assert (feedback.score, feedback.text, feedback.example) == (score, text, "e1")


async def test_verifier_loss_checks_the_forward_outputs() -> None:
    seen: list[Any] = []

    def check(output: Any, expected: Any) -> bool:
        seen.append((output, expected))
        return True

    record = recorded({"answer": "x"})
    feedback = await VerifierLoss(check)(record, 7)
    assert seen == [({"answer": "x"}, 7)]
    assert feedback.record is record


def judge_with(*replies: str) -> tuple[ScriptedLLM, Any]:
    answers = iter(replies)
    model = ScriptedLLM(lambda request: next(answers))
    return model, scripted_manager({"judge": model})


async def test_llm_judge_scores_and_critiques() -> None:
    model, resources = judge_with("<SCORE>7</SCORE><CRITIQUE>Name the unit.</CRITIQUE>")
    judge = LLMJudge("judge", "Correct and with units.", resources=resources)
    meter = Meter()
    with metering(meter):
        feedback = await judge(recorded({"answer": "12"}, {"q": "how far?"}), "12 km", example=1)
    assert (feedback.score, feedback.text, feedback.example) == (0.7, "Name the unit.", 1)
    request: LLMRequest = model.calls[0]
    assert "<RUBRIC>\nCorrect and with units.\n</RUBRIC>" in request.prompt
    assert "<EXPECTED>\n12 km\n</EXPECTED>" in request.prompt
    assert '"q": "how far?"' in request.prompt
    assert meter.by_role[Role.JUDGE].calls == 1


async def test_llm_judge_retries_unparseable_replies_and_clamps() -> None:
    model, resources = judge_with("great!", "<SCORE>14</SCORE><CRITIQUE>ok</CRITIQUE>")
    judge = LLMJudge("judge", "r", resources=resources, use_expected=False)
    feedback = await judge(recorded("out"), "x")
    assert feedback.score == 1.0
    assert RETRY_NOTE.format(attempt=2) in model.calls[1].prompt
    assert "<EXPECTED>" not in model.calls[0].prompt


async def test_llm_judge_raises_when_no_reply_parses() -> None:
    model, resources = judge_with("a", "b")
    judge = LLMJudge("judge", "r", resources=resources, attempts=2)
    with pytest.raises(MalformedResponseError, match="no <SCORE> in 2 replies"):
        await judge(recorded("out"), "x")
    assert len(model.calls) == 2


async def test_llm_judge_uses_the_forward_pass_resources_by_default() -> None:
    task = ScriptedLLM(lambda request: "draft")
    judge_model = ScriptedLLM(lambda request: "<SCORE>3</SCORE>")
    resources = scripted_manager({"task": task, "judge": judge_model})
    record = await forward(load_graph(LINEAR), {"question": "q"}, resources)
    feedback = await LLMJudge("judge", "r")(record, None)
    assert (feedback.score, feedback.text) == (0.3, "")
    assert "<EXPECTED>" not in judge_model.calls[0].prompt


async def test_composite_loss_weights_scores_and_joins_texts() -> None:
    right = VerifierLoss(lambda output, expected: (1.0, "Right answer."))
    short = VerifierLoss(lambda output, expected: (0.0, "Too long."))
    silent = VerifierLoss(lambda output, expected: (0.5, ""))
    loss = CompositeLoss([(right, 3.0), (short, 1.0), (silent, 2.0)])
    feedback = await loss(recorded("x"), "x", example=2)
    assert feedback.score == pytest.approx((3 * 1.0 + 0 + 2 * 0.5) / 6)
    assert feedback.text == "Right answer.\nToo long."
    assert feedback.example == 2


async def test_composite_of_registry_verifiers() -> None:
    loss = CompositeLoss(
        [(VerifierLoss(verifier("answer_equals")), 1), (VerifierLoss(verifier("contains")), 1)]
    )
    feedback = await loss(recorded("42\nAnswer: 41"), "42")
    assert feedback.score == 0.5
    assert feedback.text.splitlines() == [
        "The final answer was '41'; the expected answer is '42'.",
        "The output contains the expected answer '42'.",
    ]
