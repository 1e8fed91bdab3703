"""Task A: rule detection, the task model's policy and the exact accuracies."""

from __future__ import annotations

import pytest

from app.llm.simulation import answer
from app.llm.simulation.counting import H1_LIMIT, accuracy, generate, needs
from app.llm.simulation.phrasebook import HARMFUL, PHRASEBOOK
from app.llm.simulation.rules import detect
from tests.support.simulation import answered

SEED = "You answer questions about things. End your reply with a final line 'Answer: N'."
ITEMS = generate(220, seed=0)


@pytest.mark.parametrize(
    ("text", "rules"),
    [
        ("Write every number word as digits before counting.", {"R1"}),
        ("Numbers written as words must be read as integers.", {"R1"}),
        ("Count only the objects of the category the question asks about.", {"R2"}),
        ("Skip anything that is not of the requested kind.", {"R2"}),
        ("Finish with the line 'Answer: 7'.", {"R3"}),
        ("Answer immediately, don't list the items.", {"H1"}),
        ("Be concise and friendly. Digits are fine.", set()),
        ("Think about the question. Count carefully.", set()),
    ],
)
def test_rules_are_detected_in_paraphrases_and_not_in_unrelated_text(
    text: str, rules: set[str]
) -> None:
    assert detect(text, ["R1", "R2", "R3", "H1"]) == rules


def test_every_phrasebook_instruction_is_understood_by_the_task_model() -> None:
    fixes = {"number_words": "R1", "other_category": "R2", "answer_line": "R3"}
    for diagnosis, rule in fixes.items():
        for sentence in PHRASEBOOK[diagnosis]:
            assert rule in detect(sentence), sentence
    assert detect(HARMFUL) == {"H1"}


@pytest.mark.parametrize(
    ("extra", "rules"),
    [
        ("", set()),
        (" Turn spelled-out numbers into digits first.", {"R1"}),
        (" Ignore every object that is not of the requested kind.", {"R2"}),
        (
            " Convert number words into numerals. Count only the asked category's items.",
            {"R1", "R2"},
        ),
        (
            " Convert number words into numerals. Count only the asked category's items. "
            "Answer immediately, don't list the items.",
            {"R1", "R2", "H1"},
        ),
    ],
)
def test_the_analytic_accuracy_is_the_task_models_accuracy(extra: str, rules: set[str]) -> None:
    replies = [answer("sim-task", SEED + extra, item.question) for item in ITEMS]
    observed = sum(
        answered(reply or "") == item.expected for reply, item in zip(replies, ITEMS, strict=True)
    )
    assert observed / len(ITEMS) == accuracy({*rules, "R3"}, ITEMS)


def test_the_accuracies_follow_the_design() -> None:
    start, r1, r2, both = (accuracy({*s, "R3"}, ITEMS) for s in ((), {"R1"}, {"R2"}, {"R1", "R2"}))
    assert 0.09 < start < 0.19
    assert 0.22 < r1 < 0.36
    assert 0.40 < r2 < 0.56
    assert both > 0.9
    assert accuracy({"R1", "R2"}, ITEMS) == 0.0  # no answer line, nothing scores


def test_an_item_is_right_exactly_when_the_rules_it_needs_are_present() -> None:
    for item in ITEMS:
        for state in ((), ("R1",), ("R2",), ("R1", "R2")):
            right = accuracy({*state, "R3"}, [item]) == 1.0
            assert right == (needs(item) <= set(state) and not item.floor)


def test_the_floor_is_about_five_percent_and_fixed_by_the_input() -> None:
    floor = [item for item in ITEMS if item.floor]
    assert 0.02 < len(floor) / len(ITEMS) < 0.09
    assert [i.floor for i in generate(220, seed=0)] == [i.floor for i in ITEMS]


def test_harmful_h1_fails_exactly_the_items_with_many_objects() -> None:
    full = {"R1", "R2", "R3"}
    for item in ITEMS:
        hurt = accuracy(full, [item]) == 1.0 and accuracy({*full, "H1"}, [item]) == 0.0
        assert hurt == (item.objects > H1_LIMIT and not item.floor)
    assert 0.2 < sum(i.objects > H1_LIMIT for i in ITEMS) / len(ITEMS) < 0.4


def test_items_carry_unique_canaries_and_generation_is_deterministic() -> None:
    refs = [item.ref for item in ITEMS]
    assert len(set(refs)) == len(refs)
    assert all(f"(ref {item.ref})" in item.question for item in ITEMS)
    assert [i.question for i in generate(220, seed=0)] == [i.question for i in ITEMS]
    assert [i.question for i in generate(20, seed=1)] != [i.question for i in ITEMS[:20]]
