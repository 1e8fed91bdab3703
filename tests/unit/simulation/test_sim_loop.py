"""The simulator supports the Task A learning curve: a minimal critic -> optimizer -> gate
loop built from the prompt contract reaches the analytic ceiling, and the controls do not.

The loop is test scaffolding (the real trainer is ``app.engine.optimization.train``); what
is under test is that the simulated roles, acting only on their requests, move a prompt
along the analytic path.
"""

from __future__ import annotations

import random

import pytest

from app.engine.optimization.prompts import parse_critiques, parse_improved_value
from app.llm.simulation import answer
from app.llm.simulation.counting import Item, accuracy, generate
from app.llm.simulation.examples import SEED_A, split
from app.llm.simulation.rules import detect
from tests.support.simulation import answered, critic_for, optimizer_for, parameter, verdict

PARTS = split(generate(220, seed=0))
START = accuracy({"R3"}, PARTS["test"])


def score(value: str, items: list[Item]) -> float:
    return sum(
        answered(answer("sim-task", value, i.question) or "") == i.expected for i in items
    ) / len(items)


def feedback(value: str, batch: list[Item], critic: str, shuffle: bool) -> list[str]:
    outputs = [answer("sim-task", value, item.question) or "" for item in batch]
    verdicts = [verdict(o, item.expected) for o, item in zip(outputs, batch, strict=True)]
    if shuffle:  # each output gets the loss feedback of the next example
        verdicts = verdicts[1:] + verdicts[:1]
    texts = []
    for item, output, text in zip(batch, outputs, verdicts, strict=True):
        request = critic_for(
            "count", value, item.question, output, [text], [parameter("instructions", value)]
        )
        found = parse_critiques(answer(critic, "", request) or "", ["instructions"]) or {}
        texts += found.values()
    return texts


def train(
    seed: int, critic: str = "sim-critic", optimizer: str = "sim-optimizer", shuffle: bool = False
) -> tuple[str, list[frozenset[str]]]:
    value, best, path = SEED_A, score(SEED_A, PARTS["val"]), []
    for epoch in range(3):
        order = list(PARTS["train"])
        random.Random(f"{seed}:{epoch}").shuffle(order)
        for start in range(0, len(order), 5):
            texts = feedback(value, order[start : start + 5], critic, shuffle)
            if not texts:
                continue
            reply = answer(optimizer, "", optimizer_for("instructions", value, texts))
            proposal = parse_improved_value(reply or "") or value
            if (candidate := score(proposal, PARTS["val"])) > best:
                value, best = proposal, candidate
                path.append(detect(value, ["R1", "R2", "H1"]))
    return value, path


@pytest.mark.parametrize("seed", range(5))
def test_the_loop_reaches_the_analytic_ceiling(seed: int) -> None:
    value, path = train(seed)
    assert detect(value, ["R1", "R2", "H1"]) == {"R1", "R2"}
    assert score(value, PARTS["test"]) == accuracy({"R1", "R2", "R3"}, PARTS["test"]) >= 0.9
    assert path[-1] == {"R1", "R2"}
    assert len(path) == 2


def test_the_commoner_diagnosis_is_learnt_first_for_most_seeds() -> None:
    firsts = [train(seed)[1][0] for seed in range(5)]
    assert sum(first == {"R2"} for first in firsts) >= 3


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize(
    "control",
    [{"critic": "sim-critic:generic"}, {"optimizer": "sim-optimizer:off"}, {"shuffle": True}],
)
def test_the_controls_stay_near_the_start(control: dict[str, object], seed: int) -> None:
    value, _ = train(seed, **control)  # type: ignore[arg-type]
    assert abs(score(value, PARTS["test"]) - START) <= 0.03


def test_the_harmful_instruction_never_passes_the_gate() -> None:
    value, path = train(0, optimizer="sim-optimizer:harmful")
    assert all("H1" not in state for state in path)
    assert "H1" not in detect(value)
