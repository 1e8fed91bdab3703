"""Task A (category counting) trained end to end against the offline simulator.

Thresholds come from the simulator's analytic accuracies (tests/support/task_a.py), not
from observed runs: the seed prompt holds only R3 (~11% on test), R1+R2+R3 is the best
any prompt reaches (~93%), and the issue asks for >= 90% within 3 epochs of batch 5.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from app.engine import LLMRequest
from app.engine.optimization import (
    Schedule,
    SFAOptimizer,
    StopReason,
    Trainer,
    TrainerState,
    TrainingHistory,
    graph_parameters,
)
from app.llm.simulation.rules import detect
from app.llm.simulation.text import sentences
from tests.support.sim_tasks import (
    accuracy_on_test,
    analytic,
    answer_loss,
    canary,
    graph_of,
    recorded_resources,
    sim_resources,
    splits_of,
    train_task,
    trained,
)

pytestmark = pytest.mark.slow
TASK = "task-a"
SPLITS = splits_of(TASK)
START = analytic(TASK, {"R3"})
BEST = analytic(TASK, {"R1", "R2", "R3"})


async def fit(
    seed: int, resources: Any = None, conservatism: float = 0.5, **options: Any
) -> tuple[TrainingHistory, float, float]:
    """Train Task A; returns the history and the test accuracy before and after."""
    resources = resources or sim_resources()
    graph = graph_of(TASK)
    params = graph_parameters(graph)
    optimizer = SFAOptimizer(params, conservatism=conservatism)
    before = await accuracy_on_test(TASK, graph, resources)
    history = await train_task(TASK, graph, optimizer, seed, resources, **options)
    return history, before, await accuracy_on_test(TASK, trained(graph, params), resources)


def test_the_thresholds_are_the_analytic_ones() -> None:
    assert 0.08 <= START <= 0.20  # the issue's "about 14%"
    assert BEST >= 0.90


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
async def test_task_a_goes_from_the_seed_accuracy_to_90_percent(seed: int) -> None:
    history, before, after = await fit(seed)
    assert before == START
    assert after >= 0.90
    assert after == BEST  # both rules found: nothing else moves the simulated task
    assert history.stop_reason is StopReason.MAX_EPOCHS
    assert history.baseline is not None
    assert history.best_score is not None
    assert history.best_score > history.baseline
    assert all(p.edit_ratio <= 0.7 for step in history.accepted for p in step.proposals)


async def test_the_accepted_path_is_the_analytic_one_r2_first() -> None:
    graph = graph_of(TASK)
    optimizer = SFAOptimizer(graph_parameters(graph))
    history = await train_task(TASK, graph, optimizer, 0, sim_resources())
    first, second = history.accepted[:2]
    assert first.score == analytic(TASK, {"R2", "R3"}, "val")
    assert second.score == analytic(TASK, {"R1", "R2", "R3"}, "val")


CONTROLS = {
    "generic critic": ({"critic": "sim-critic:generic"}, {}),
    "optimizer off": ({"optimizer": "sim-optimizer:off"}, {}),
    "feedback shuffled across examples": ({}, {"shuffle_feedback": True}),
}


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
@pytest.mark.parametrize("control", list(CONTROLS))
async def test_negative_controls_stay_within_3_points_of_the_start(control: str, seed: int) -> None:
    models, options = CONTROLS[control]
    history, before, after = await fit(seed, sim_resources(**models), **options)
    assert before == START
    assert abs(after - START) <= 0.03
    assert history.accepted == []
    assert history.stop_reason is StopReason.STALLED


async def test_injected_harmful_proposals_are_rejected_and_never_best() -> None:
    # sim-optimizer:harmful proposes H1 ("answer immediately, don't list the items", which
    # fails the items with more than 8 objects) instead of the fix on half its requests
    resources = sim_resources(optimizer="sim-optimizer:harmful")
    history, _, after = await fit(0, resources, conservatism=0.9)
    harmful = "Answer immediately"
    with_harm = [s for s in history.steps if any(harmful in p.new for p in s.proposals)]
    assert with_harm
    assert not any(step.accepted for step in with_harm)
    assert all(step.delta is not None and step.delta <= 0 for step in with_harm)
    assert all(harmful not in value for value in history.best_values.values())
    assert all(harmful not in value for s in history.steps for value in s.parameters.values())
    assert after == BEST  # the fixes it proposed otherwise were kept


async def test_at_conservatism_0_1_the_gate_rejects_the_proposals_that_drop_a_needed_rule() -> None:
    # at low conservatism sim-optimizer also drops one sentence of a seeded share of its
    # proposals; a harmless drop may be kept, one that loses a rule must not be
    rules = ["R1", "R2", "R3"]
    harmful_drops = []
    for seed in range(5):
        history, _, after = await fit(seed, conservatism=0.1)
        assert after == BEST
        for step in history.steps:
            for p in step.proposals:
                dropped = set(sentences(p.old)) - set(sentences(p.new))
                if dropped and detect(p.old, rules) - detect(p.new, rules):
                    harmful_drops.append(step)
    assert harmful_drops
    assert not any(step.accepted for step in harmful_drops)
    assert all(step.delta is not None and step.delta < 0 for step in harmful_drops)


async def test_the_same_seed_gives_the_same_history() -> None:
    first, _, _ = await fit(3)
    second, _, _ = await fit(3)
    assert first.to_dict() == second.to_dict()


async def test_no_test_canary_reaches_the_critic_or_the_optimizer() -> None:
    log: dict[str, list[LLMRequest]] = {}
    _, _, after = await fit(0, recorded_resources(log))
    assert after == BEST
    assert log["critic"]
    assert log["optimizer"]
    canaries = [canary(example) for example in SPLITS["test"] + SPLITS["val"]]
    seen = " ".join(r.system + r.prompt for role in ("critic", "optimizer") for r in log[role])
    assert [c for c in canaries if c in seen] == []
    train_canaries = [canary(example) for example in SPLITS["train"]]
    assert any(c in seen for c in train_canaries)  # the scan can find a canary


async def test_a_critic_whose_every_call_fails_ends_stalled_with_the_root_error() -> None:
    history, _, after = await fit(0, sim_resources(critic="sim-critic:fail"))
    assert history.stop_reason is StopReason.STALLED
    assert history.error is not None
    assert "simulated outage of sim-critic:fail" in history.error
    assert history.accepted == []
    assert after == START


def a_trainer(resources: Any, state: TrainerState | None = None) -> Trainer:
    graph = graph_of(TASK)
    args = (graph, SPLITS["train"], answer_loss(), SFAOptimizer(graph_parameters(graph)))
    options: dict[str, Any] = {
        "valset": SPLITS["val"], "schedule": Schedule(epochs=3, batch_size=5, seed=2),
        "resources": resources,
    }  # fmt: skip
    return Trainer(*args, **options) if state is None else Trainer.resume(state, *args, **options)


async def test_resume_after_step_4_repeats_no_call_and_ends_with_the_same_history() -> None:
    whole_log: dict[str, list[LLMRequest]] = {}
    whole = a_trainer(recorded_resources(whole_log))
    while not whole.done:
        await whole.step()

    first_log: dict[str, list[LLMRequest]] = {}
    first = a_trainer(recorded_resources(first_log))
    for _ in range(5):  # the baseline and steps 1-4
        await first.step()
    saved = first.state.to_json()

    rest_log: dict[str, list[LLMRequest]] = {}
    rest = a_trainer(recorded_resources(rest_log), TrainerState.from_json(saved))
    while not rest.done:
        await rest.step()

    assert rest.history.to_dict() == whole.history.to_dict()
    assert rest.history.best_score is not None
    assert rest.history.best_score >= 0.9
    for role in ("task", "critic", "optimizer"):
        assert made(first_log, role) + made(rest_log, role) == made(whole_log, role), role


def made(log: dict[str, list[LLMRequest]], role: str) -> Counter[str]:
    """The requests a role received, as a multiset."""
    return Counter(r.system + r.prompt for r in log.get(role, []))


async def test_flaky_critic_and_optimizer_replies_are_asked_again_and_training_succeeds() -> None:
    log: dict[str, list[LLMRequest]] = {}
    flaky = {"critic": "sim-critic:flaky", "optimizer": "sim-optimizer:flaky"}
    history, _, after = await fit(0, recorded_resources(log, **flaky))
    assert after == BEST
    for role in ("critic", "optimizer"):
        assert any("<RETRY" in r.prompt for r in log[role]), role
    assert history.usage["backward"]["calls"] == len(log["critic"])
    assert history.usage["optimizer"]["calls"] == len(log["optimizer"])
