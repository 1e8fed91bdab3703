"""Task B: detectors, the two task policies, exact accuracies and the critic's credit assignment."""

from __future__ import annotations

from itertools import combinations

import pytest

from app.llm.simulation import answer
from app.llm.simulation.diagnoses import BAD_INPUTS, FEES, STICKER, UNITS
from app.llm.simulation.examples import SEED_B_COMPARE, SEED_B_EXTRACT
from app.llm.simulation.phrasebook import PHRASEBOOK
from app.llm.simulation.pricing import TRAINABLE, accuracy, generate, needs
from app.llm.simulation.rules import detect
from tests.support.simulation import answered, critic_for, critiques, parameter, upstream, verdict

ITEMS = generate(120, seed=5)
FIX = {
    "E1": PHRASEBOOK["units"][1],
    "E2": PHRASEBOOK["fees"][2],
    "C1": PHRASEBOOK["sticker"][2],
}
EXTRACTOR_RULES, COMPARER_RULES = ("E1", "E2"), ("C1",)


def prompts(state: set[str]) -> tuple[str, str]:
    extract = " ".join([SEED_B_EXTRACT, *(FIX[r] for r in EXTRACTOR_RULES if r in state)])
    compare = " ".join([SEED_B_COMPARE, *(FIX[r] for r in COMPARER_RULES if r in state)])
    return extract, compare


def pipeline(item_input: dict[str, str], extract: str, compare: str) -> tuple[str, str, str, str]:
    a = answer("sim-task", extract, item_input["product_a"]) or ""
    b = answer("sim-task", extract, item_input["product_b"]) or ""
    prompt = f"Product A:\n{a}\n\nProduct B:\n{b}"
    return a, b, prompt, answer("sim-task", compare, prompt) or ""


@pytest.mark.parametrize(
    ("text", "rules"),
    [
        ("Convert every quantity to a common unit, kg or l.", {"E1"}),
        ("Normalise grams to kilograms.", {"E1"}),
        ("Ignore the shipping charge.", {"E2"}),
        ("Postage is never part of the price; leave it out.", {"E2"}),
        ("Pick the offer with the lower price per unit.", {"C1"}),
        ("Reply with a single letter.", {"C2"}),
        ("Read the text carefully and be accurate about the price.", set()),
        ("Shipping is usually fast. Units matter.", set()),
    ],
)
def test_task_b_rules_are_detected_in_paraphrases_only(text: str, rules: set[str]) -> None:
    assert detect(text, ["E1", "E2", "C1", "C2"]) == rules


def test_every_task_b_phrasebook_instruction_is_understood() -> None:
    for diagnosis, rule in {"units": "E1", "fees": "E2", "sticker": "C1", "letter": "C2"}.items():
        for sentence in PHRASEBOOK[diagnosis]:
            assert rule in detect(sentence), sentence
    assert detect(SEED_B_EXTRACT, TRAINABLE) == set()
    assert detect(SEED_B_COMPARE, [*TRAINABLE, "C2"]) == {"C2"}


@pytest.mark.parametrize(
    "state", [set(s) for k in range(len(TRAINABLE) + 1) for s in combinations(TRAINABLE, k)]
)
def test_the_analytic_accuracy_is_the_pipelines_accuracy(state: set[str]) -> None:
    extract, compare = prompts(state)
    right = [
        answered(pipeline(item.example()["input"], extract, compare)[3]) == item.expected  # type: ignore[arg-type]
        for item in ITEMS
    ]
    assert sum(right) / len(ITEMS) == accuracy({*state, "C2"}, ITEMS)


def test_an_item_is_right_exactly_when_the_rules_it_needs_are_present() -> None:
    for item in ITEMS:
        for k in range(len(TRAINABLE) + 1):
            for state in combinations(TRAINABLE, k):
                right = accuracy({*state, "C2"}, [item]) == 1.0
                assert right == (needs(item) <= set(state) and not item.floor)


def test_the_task_b_accuracies_follow_the_design() -> None:
    items = generate(220, seed=0)
    assert 0.07 < accuracy({"C2"}, items) < 0.15
    assert 0.24 < accuracy({"C1", "C2"}, items) < 0.33
    assert accuracy({*TRAINABLE, "C2"}, items) > 0.9


def comparer_critique(item_input: dict[str, str], expected: str, state: set[str]) -> dict[str, str]:
    extract, compare = prompts(state)
    _, _, prompt, output = pipeline(item_input, extract, compare)
    targets = [
        parameter("comparison_prompt", compare),
        upstream("extract_a"),
        upstream("extract_b"),
    ]
    request = critic_for("compare", compare, prompt, output, [verdict(output, expected)], targets)
    return critiques(answer("sim-critic", "", request) or "")


def test_the_comparer_critic_blames_its_prompt_or_its_inputs_by_the_evidence() -> None:
    for item in ITEMS:
        if item.floor:
            continue
        for state in ({"E1", "E2"}, {"C1"}):
            found = comparer_critique(item.example()["input"], item.expected, state)  # type: ignore[arg-type]
            wrong = not needs(item) <= state
            own, inputs = found["comparison_prompt"], found["extract_a"]
            assert (own != "NONE" or inputs != "NONE") == wrong
            assert UNITS.key not in own  # P2 never gets E1/E2 diagnoses
            assert FEES.key not in own
            if wrong and state == {"C1"}:  # C1 present: the answer follows from the extractions
                assert BAD_INPUTS.key in inputs
                assert found["extract_b"] == inputs
                assert own == "NONE"
            if wrong and state == {"E1", "E2"}:  # extractions right: only the comparison is wrong
                assert STICKER.key in own
                assert inputs == "NONE"


def test_the_extractor_critic_re_reads_the_product_text() -> None:
    item = next(i for i in ITEMS if needs(i) == {"E1", "E2", "C1"} and not i.floor)
    for text in (item.a.text(), item.b.text()):
        output = answer("sim-task", SEED_B_EXTRACT, text) or ""
        request = critic_for(
            "extract_a",
            SEED_B_EXTRACT,
            text,
            output,
            [BAD_INPUTS.text],
            [parameter("extraction_prompt", SEED_B_EXTRACT)],
        )
        found = critiques(answer("sim-critic", "", request) or "")["extraction_prompt"]
        product = item.a if text == item.a.text() else item.b
        assert (UNITS.key in found) == (product.unit in ("g", "ml"))
        assert (FEES.key in found) == bool(product.fee)
        if product.unit in ("kg", "l") and not product.fee:
            assert found == "NONE"
