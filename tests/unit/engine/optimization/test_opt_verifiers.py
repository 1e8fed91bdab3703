"""The closed verifier registry: every op, the exact feedback texts of the contract (the
simulator's critic reads them), and specs it refuses."""

from __future__ import annotations

import pytest

from app.engine.errors import ConfigError
from app.engine.optimization import Verdict, verifier, verifier_names


def test_the_registry_is_closed() -> None:
    assert verifier_names() == ["answer_equals", "contains", "exact", "json_equals", "regex"]
    with pytest.raises(ConfigError, match=r"unknown verifier 'python'.*answer_equals"):
        verifier("python")


@pytest.mark.parametrize(
    ("output", "expected", "verdict"),
    [
        ("Steps...\nAnswer: 42", 42, Verdict(1.0, "The final answer '42' is correct.")),
        ("answer:  Paris \n", "paris", Verdict(1.0, "The final answer 'Paris' is correct.")),
        (
            "Answer: 41\nWait.\nAnswer: 40",
            "42",
            Verdict(0.0, "The final answer was '40'; the expected answer is '42'."),
        ),
        (
            "It is 42.",
            "42",
            Verdict(0.0, "The output has no final 'Answer:' line; the expected answer is '42'."),
        ),
    ],
)
def test_answer_equals(output: str, expected: object, verdict: Verdict) -> None:
    assert verifier("answer_equals")(output, expected) == verdict


def test_exact() -> None:
    check = verifier("exact")
    assert check("  yes\n", "yes") == Verdict(
        1.0, "The output 'yes' is exactly the expected answer."
    )
    assert check("Yes", "yes") == Verdict(
        0.0, "The output was 'Yes'; the expected answer is 'yes'."
    )


def test_contains() -> None:
    check = verifier("contains")
    assert check("it is 42 units", 42) == Verdict(
        1.0, "The output contains the expected answer '42'."
    )
    assert check("it is 41", 42) == Verdict(
        0.0, "The output does not contain the expected answer; the expected answer is '42'."
    )


def test_regex() -> None:
    check = verifier("regex", pattern=r"^\d+ units$")
    assert check("12 units", None).score == 1.0
    assert check("12 units", None).text == "The output matches the pattern '^\\\\d+ units$'."
    assert check("twelve", "12 units") == Verdict(
        0.0,
        "The output does not match the pattern '^\\\\d+ units$'; "
        "the expected answer is '12 units'.",
    )


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"pattern": r"(a)\1"}, "RE2"),  # a backreference: not RE2
        ({"pattern": r"(?=a)b"}, "RE2"),  # lookahead: not RE2
        ({"pattern": "a" * 1001}, "over 1000 characters"),
        ({}, "needs param 'pattern'"),
        ({"pattern": "a", "flags": "i"}, "no param 'flags'"),
    ],
)
def test_regex_refuses_what_re2_cannot_run_safely(params: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        verifier("regex", **params)


def test_json_equals() -> None:
    check = verifier("json_equals")
    assert check('{"b": 1, "a": [1, 2]}', {"a": [1, 2], "b": 1}).score == 1.0
    assert check({"parsed": {"a": 1}}, '{"a": 1}').score == 1.0  # the only output, as JSON
    assert check('{"a": 2}', {"a": 1}) == Verdict(
        0.0, """The output was '{"a":2}'; the expected answer is '{"a":1}'."""
    )
    assert check("not json", {"a": 1}) == Verdict(
        0.0, """The output is not valid JSON; the expected answer is '{"a":1}'."""
    )


def test_the_output_param_picks_a_graph_output() -> None:
    outputs = {"reasoning": "Answer: 1", "answer": "Answer: 2"}
    assert verifier("answer_equals", output="answer")(outputs, "2").score == 1.0
    assert verifier("answer_equals", output="reasoning")(outputs, "2").score == 0.0
    assert verifier("exact")({"only": "x"}, "x").score == 1.0  # the only output by default
    with pytest.raises(ConfigError, match="name one with the verifier's 'output'"):
        verifier("exact")(outputs, "x")
    with pytest.raises(ConfigError, match="names output 'missing'"):
        verifier("exact", output="missing")(outputs, "x")


def test_unknown_params_are_refused() -> None:
    with pytest.raises(ConfigError, match="'answer_equals' has no param 'strict'"):
        verifier("answer_equals", strict=True)
