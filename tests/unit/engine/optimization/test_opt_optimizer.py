"""SFAOptimizer against hand-made feedback and a scripted optimizer model: one call per
parameter with every item, proposals not applied, the edit cap enforced, bad replies
retried then counted."""

from __future__ import annotations

import pytest

from app.engine import Parameter
from app.engine.errors import ConfigError, PermanentLLMError
from app.engine.llm import LLMRequest
from app.engine.optimization.edits import edit_ratio
from app.engine.optimization.prompts import RETRY_NOTE
from app.engine.optimization.sfa import SFAOptimizer
from app.engine.records import FeedbackItem
from app.engine.testing import ScriptedLLM, scripted_manager
from tests.support.training import adding, current_value, feedback_texts


def items(target: str, texts: list[str]) -> list[FeedbackItem]:
    return [
        FeedbackItem(t, target=target, node=f"n{i % 2}", example=i) for i, t in enumerate(texts)
    ]


def with_feedback(value: str, target: str, texts: list[str]) -> Parameter:
    param = Parameter(value, description=f"the {target} instruction")
    param.feedback.extend(items(target, texts))
    return param


def bound(params: dict[str, Parameter], llm: ScriptedLLM, **options: float) -> SFAOptimizer:
    optimizer = SFAOptimizer(params, **options)  # type: ignore[arg-type]
    return optimizer.bind(scripted_manager({"optimizer": llm}, max_retries=0))  # type: ignore[return-value]


async def test_one_call_per_parameter_with_every_feedback_item() -> None:
    llm = ScriptedLLM(adding("Use digits."))
    a = with_feedback("Count the items.", "a", ["wrong count", "no digits", "late answer"])
    b = with_feedback("Compare prices.", "b", ["ignored units", "sticker price"])
    idle = Parameter("Untouched.", description="gets no feedback")
    optimizer = bound({"a": a, "b": b, "idle": idle}, llm)

    proposals = await optimizer.step()

    assert len(llm.calls) == 2
    sent = {current_value(r): feedback_texts(r) for r in llm.calls}
    assert sent == {
        "Count the items.": ["wrong count", "no digits", "late answer"],
        "Compare prices.": ["ignored units", "sticker price"],
    }
    assert {(p.parameter, p.feedback_count) for p in proposals} == {("a", 3), ("b", 2)}
    assert a.value == "Count the items."  # proposed, not applied


async def test_apply_and_revert_put_the_text_in_and_take_it_out() -> None:
    a = with_feedback("Count the items.", "a", ["no digits"])
    optimizer = bound({"a": a}, ScriptedLLM(adding("Use digits.")))
    [proposal] = await optimizer.step()
    optimizer.apply(proposal)
    assert a.value == "Count the items. Use digits."
    optimizer.revert(proposal)
    assert a.value == "Count the items."


async def test_zero_feedback_clears_every_parameter() -> None:
    a = with_feedback("A.", "a", ["x", "y"])
    b = with_feedback("B.", "b", ["z"])
    optimizer = SFAOptimizer([a, b])
    optimizer.zero_feedback()
    assert a.feedback == []
    assert b.feedback == []


async def test_step_needs_bound_resources() -> None:
    optimizer = SFAOptimizer({"a": with_feedback("A.", "a", ["x"])})
    with pytest.raises(ConfigError, match="bind"):
        await optimizer.step()


async def test_edit_ratio_over_the_cap_is_asked_again_then_rejected() -> None:
    llm = ScriptedLLM(
        lambda r: "<IMPROVED_VALUE>Something else entirely, word for word new.</IMPROVED_VALUE>"
    )
    a = with_feedback("Count the items.", "a", ["no digits"])
    optimizer = bound({"a": a}, llm, conservatism=0.9)

    assert await optimizer.step() == []

    assert len(llm.calls) == 2
    assert "<REJECTED>" not in llm.calls[0].prompt
    assert "<REJECTED>" in llm.calls[1].prompt
    assert '<EDIT_CAP ratio="0.' in llm.calls[1].prompt
    assert 'cap="0.46"' in llm.calls[1].prompt
    [rejection] = optimizer.report.rejections
    assert (rejection.parameter, rejection.reason) == ("a", "edit_ratio")
    assert "cap 0.460" in rejection.detail


async def test_a_proposal_under_the_cap_reports_its_edit_ratio() -> None:
    a = with_feedback("Count the items.", "a", ["no digits"])
    optimizer = bound({"a": a}, ScriptedLLM(adding("Use digits.")), max_edit_ratio=0.5)
    [proposal] = await optimizer.step()
    assert proposal.edit_ratio == pytest.approx(edit_ratio("Count the items.", proposal.new))
    assert 0 < proposal.edit_ratio <= 0.5


async def test_the_second_answer_is_kept_when_it_fits_the_cap() -> None:
    replies = iter(
        [
            "<IMPROVED_VALUE>Totally different words here.</IMPROVED_VALUE>",
            "<IMPROVED_VALUE>Count the items in digits.</IMPROVED_VALUE>",
        ]
    )
    llm = ScriptedLLM(lambda r: next(replies))
    optimizer = bound({"a": with_feedback("Count the items.", "a", ["x"])}, llm, conservatism=0.9)
    [proposal] = await optimizer.step()
    assert proposal.new == "Count the items in digits."


async def test_unparseable_replies_are_retried_then_counted() -> None:
    llm = ScriptedLLM(lambda r: "I would change it to be clearer.")
    optimizer = bound({"a": with_feedback("A.", "a", ["x"])}, llm)

    assert await optimizer.step() == []

    assert len(llm.calls) == 3
    assert RETRY_NOTE.format(attempt=3) in llm.calls[2].prompt
    assert [(r.reason, optimizer.report.calls) for r in optimizer.report.rejections] == [
        ("unparsed", 3)
    ]


async def test_a_failing_optimizer_call_is_reported_with_its_error() -> None:
    llm = ScriptedLLM(lambda r: PermanentLLMError("model 'gpt-x' does not exist"))
    optimizer = bound({"a": with_feedback("A.", "a", ["x"])}, llm)
    assert await optimizer.step() == []
    assert "does not exist" in optimizer.report.errors()[0]


async def test_an_unchanged_rewrite_is_no_proposal() -> None:
    llm = ScriptedLLM(lambda r: f"<IMPROVED_VALUE>{current_value(r)}</IMPROVED_VALUE>")
    optimizer = bound({"a": with_feedback("A.", "a", ["x"])}, llm)
    assert await optimizer.step() == []
    assert optimizer.report.rejections[0].reason == "unchanged"


def test_conservatism_outside_zero_to_one_is_refused() -> None:
    with pytest.raises(ConfigError, match="conservatism"):
        SFAOptimizer([Parameter("A.", description="a")], conservatism=1.5)


def test_unnamed_parameters_take_the_names_they_are_given() -> None:
    a = Parameter("A.", description="a")
    optimizer = SFAOptimizer([a])
    assert optimizer.named() == [("parameter_0", a)]
    optimizer.adopt_names({"instruction": a})
    assert optimizer.named() == [("instruction", a)]


async def test_requests_are_the_prompt_contract() -> None:
    llm = ScriptedLLM(adding("Use digits."))
    optimizer = bound({"a": with_feedback("A.", "a", ["x"])}, llm, conservatism=0.5)
    await optimizer.step()
    request: LLMRequest = llm.calls[0]
    assert request.system.startswith("You improve one text parameter")
    assert '<PARAMETER name="a">' in request.prompt
    assert '<CONSERVATISM value="0.50">' in request.prompt
