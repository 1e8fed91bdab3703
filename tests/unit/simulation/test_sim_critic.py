"""The simulated critic names the failure its evidence shows, for the right targets."""

from __future__ import annotations

from app.llm.simulation import answer
from app.llm.simulation.counting import generate, needs
from app.llm.simulation.diagnoses import ADDITION, ANSWER_LINE, NUMBER_WORDS, OTHER_CATEGORY
from tests.support.simulation import critic_for, critiques, parameter, upstream, verdict

SEED = "You answer questions about things. End your reply with a final line 'Answer: N'."
ITEMS = generate(220, seed=3)


def critique(
    item_question: str, expected: str, system: str = SEED, model: str = "sim-critic"
) -> dict[str, str]:
    output = answer("sim-task", system, item_question) or ""
    request = critic_for(
        "count",
        system,
        item_question,
        output,
        [verdict(output, expected)],
        [parameter("instructions", system), upstream("earlier")],
    )
    return critiques(answer(model, "", request) or "")


def test_each_needed_rule_gets_its_diagnosis_and_nothing_else() -> None:
    keys = {"R1": NUMBER_WORDS.key, "R2": OTHER_CATEGORY.key}
    for item in ITEMS:
        found = critique(item.question, item.expected)
        text = found["instructions"]
        if not needs(item):
            assert (ADDITION.key in text) if item.floor else (text == "NONE")
            continue
        for rule, key in keys.items():
            assert (key in text) == (rule in needs(item)), (item.question, text)


def test_input_targets_are_not_blamed_for_a_counting_error() -> None:
    item = next(i for i in ITEMS if needs(i))
    assert critique(item.question, item.expected)["earlier"] == "NONE"


def test_a_missing_answer_line_is_named() -> None:
    item = next(i for i in ITEMS if not needs(i) and not i.floor)
    found = critique(item.question, item.expected, system="You answer questions about things.")
    assert ANSWER_LINE.key in found["instructions"]


def test_a_floor_item_is_an_addition_error() -> None:
    item = next(i for i in ITEMS if i.floor and not needs(i))
    assert ADDITION.key in critique(item.question, item.expected)["instructions"]


def test_the_generic_critic_names_no_diagnosis() -> None:
    item = next(i for i in ITEMS if needs(i) == {"R1", "R2"})
    text = critique(item.question, item.expected, model="sim-critic:generic")["instructions"]
    assert text != "NONE"
    assert NUMBER_WORDS.key not in text
    assert OTHER_CATEGORY.key not in text
