"""The simulator supports Task B's credit assignment: feedback propagated from the comparer
to the extractor (one parameter, two call sites) reaches the ceiling; updating only the last
node plateaus at the exact C1 + C2 ceiling. Test scaffolding as in ``test_sim_loop.py``."""

from __future__ import annotations

import random
from collections import Counter

from app.engine.optimization.prompts import parse_critiques, parse_improved_value
from app.llm.simulation import answer
from app.llm.simulation.diagnoses import FEES, UNITS
from app.llm.simulation.examples import SEED_B_COMPARE, SEED_B_EXTRACT, split
from app.llm.simulation.pricing import Item, accuracy, generate
from app.llm.simulation.rules import detect
from tests.support.simulation import (
    answered,
    critic_for,
    optimizer_for,
    parameter,
    upstream,
    verdict,
)

PARTS = split(generate(220, seed=0))
P1, P2 = "extraction_prompt", "comparison_prompt"


def forward(values: dict[str, str], item: Item) -> tuple[dict[str, tuple[str, str]], str, str]:
    steps = {
        node: (text, answer("sim-task", values[P1], text) or "")
        for node, text in (("extract_a", item.a.text()), ("extract_b", item.b.text()))
    }
    prompt = f"Product A:\n{steps['extract_a'][1]}\n\nProduct B:\n{steps['extract_b'][1]}"
    return steps, prompt, answer("sim-task", values[P2], prompt) or ""


def score(values: dict[str, str], items: list[Item]) -> float:
    return sum(answered(forward(values, i)[2]) == i.expected for i in items) / len(items)


def backward(values: dict[str, str], item: Item) -> dict[str, list[tuple[str, str]]]:
    """``{parameter: [(call site, critique)]}`` for one example."""
    steps, prompt, output = forward(values, item)
    targets = [parameter(P2, values[P2]), upstream("extract_a"), upstream("extract_b")]
    request = critic_for(
        "compare", values[P2], prompt, output, [verdict(output, item.expected)], targets
    )
    said = parse_critiques(answer("sim-critic", "", request) or "", [t.name for t in targets]) or {}
    found: dict[str, list[tuple[str, str]]] = {
        P1: [],
        P2: [("compare", said[P2])] if P2 in said else [],
    }
    for node, (text, extraction) in steps.items():
        if node in said:
            request = critic_for(
                node, values[P1], text, extraction, [said[node]], [parameter(P1, values[P1])]
            )
            upstream_said = parse_critiques(answer("sim-critic", "", request) or "", [P1]) or {}
            found[P1] += [(node, c) for c in upstream_said.values()]
    return found


def train(
    seed: int, trained: tuple[str, ...] = (P1, P2)
) -> tuple[dict[str, str], Counter[str], list[str]]:
    values = {P1: SEED_B_EXTRACT, P2: SEED_B_COMPARE}
    best, sites, p2_feedback = score(values, PARTS["val"]), Counter[str](), []
    for epoch in range(3):
        order = list(PARTS["train"])
        random.Random(f"{seed}:{epoch}").shuffle(order)
        for start in range(0, len(order), 5):
            gathered: dict[str, list[tuple[str, str]]] = {P1: [], P2: []}
            for item in order[start : start + 5]:
                for name, items in backward(values, item).items():
                    gathered[name] += items
            sites.update(node for node, _ in gathered[P1])
            p2_feedback += [text for _, text in gathered[P2]]
            for name in trained:
                texts = [text for _, text in gathered[name]]
                if not texts:
                    continue
                reply = answer("sim-optimizer", "", optimizer_for(name, values[name], texts))
                candidate = {**values, name: parse_improved_value(reply or "") or values[name]}
                if (measured := score(candidate, PARTS["val"])) > best:
                    values, best = candidate, measured
    return values, sites, p2_feedback


def rules(values: dict[str, str]) -> set[str]:
    return set(detect(values[P1], ["E1", "E2"]) | detect(values[P2], ["C1", "C2"]))


def test_propagated_feedback_reaches_the_ceiling_through_both_call_sites() -> None:
    values, sites, p2_feedback = train(0)
    assert rules(values) == {"E1", "E2", "C1", "C2"}
    assert score(values, PARTS["test"]) == accuracy(rules(values), PARTS["test"]) >= 0.9
    assert sites["extract_a"] > 0
    assert sites["extract_b"] > 0
    assert not any(UNITS.key in t or FEES.key in t for t in p2_feedback)


def test_updating_only_the_last_node_plateaus_at_the_c1_c2_ceiling() -> None:
    values, _, _ = train(0, trained=(P2,))
    assert rules(values) == {"C1", "C2"}
    assert score(values, PARTS["test"]) == accuracy({"C1", "C2"}, PARTS["test"])
