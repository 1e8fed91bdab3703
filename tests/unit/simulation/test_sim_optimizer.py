"""The simulated optimizer acts only on the feedback it is sent."""

from __future__ import annotations

from app.engine.optimization.prompts import parse_improved_value
from app.llm.simulation import answer
from app.llm.simulation.diagnoses import NUMBER_WORDS, OTHER_CATEGORY, say
from app.llm.simulation.phrasebook import HARMFUL, PHRASEBOOK
from app.llm.simulation.rules import detect
from app.llm.simulation.text import sentences
from tests.support.simulation import optimizer_for

SEED = "You answer questions about things. End your reply with a final line 'Answer: N'."
WORDS = say(NUMBER_WORDS, "three cats")
OTHER = say(OTHER_CATEGORY, "a drum")


def improve(
    texts: list[str], value: str = SEED, model: str = "sim-optimizer", conservatism: float = 0.5
) -> str:
    reply = answer(model, "", optimizer_for("instructions", value, texts, conservatism)) or ""
    improved = parse_improved_value(reply)
    assert improved is not None, reply
    return improved


def added(new: str, old: str = SEED) -> list[str]:
    assert new.startswith(old)
    return sentences(new[len(old) :])


def test_the_most_frequent_diagnosis_is_fixed_first() -> None:
    new = improve([OTHER, WORDS + " " + OTHER, "NONE", OTHER])
    assert detect(new, ["R1", "R2"]) == {"R2"}
    assert len(added(new)) == 1
    new = improve([WORDS, WORDS + " " + OTHER, WORDS])
    assert detect(new, ["R1", "R2"]) == {"R1"}


def test_a_diagnosis_already_fixed_is_skipped_for_the_next() -> None:
    value = f"{SEED} {PHRASEBOOK['other_category'][0]}"
    new = improve([OTHER, OTHER, WORDS], value=value)
    assert detect(new, ["R1", "R2"]) == {"R1", "R2"}
    assert added(new, value) == [s for s in sentences(new) if s not in sentences(value)]


def test_without_diagnoses_nothing_changes() -> None:
    assert improve(["The output was not good enough. Be clearer."]) == SEED
    assert improve([]) == SEED


def test_the_phrasing_depends_on_the_request_not_on_a_fixed_string() -> None:
    values = [f"{SEED} Variant {n}." for n in range(12)]
    phrasings = {added(improve([OTHER], value=v), v)[0] for v in values}
    assert len(phrasings) >= 2
    assert phrasings <= set(PHRASEBOOK["other_category"])


def test_the_harmful_variant_adds_h1_instead_of_the_fix_for_about_half_the_requests() -> None:
    values = [f"{SEED} Variant {n}." for n in range(40)]
    proposals = [(v, improve([OTHER], value=v, model="sim-optimizer:harmful")) for v in values]
    harmed = [new for v, new in proposals if added(new, v) == [HARMFUL]]
    assert 0.25 < len(harmed) / len(values) < 0.75
    for value, new in proposals:
        assert len(added(new, value)) == 1
        assert detect(new, ["R2", "H1"]) in ({"R2"}, {"H1"})


def test_one_sentence_is_added_per_step_at_every_conservatism() -> None:
    for conservatism in (0.0, 0.5, 0.9, 1.0):
        new = improve([OTHER, WORDS], conservatism=conservatism)
        assert len(added(new)) == 1


def test_the_off_variant_returns_the_value_unchanged() -> None:
    assert improve([OTHER, WORDS], model="sim-optimizer:off") == SEED


def test_feedback_that_never_arrives_cannot_help() -> None:
    """The optimizer reads only its request: a diagnosis it is not sent is not fixed."""
    assert "R1" not in detect(improve([OTHER, OTHER, OTHER]))
