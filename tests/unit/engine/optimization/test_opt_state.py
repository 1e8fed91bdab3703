"""TrainerState survives JSON, and a trainer's events tell the run as it goes."""

from __future__ import annotations

import json
from typing import Any

from app.engine.optimization.history import StopReason
from app.engine.optimization.roles import Role
from app.engine.optimization.sfa import SFAOptimizer
from app.engine.optimization.state import TrainerState
from app.engine.optimization.train import train
from app.engine.optimization.trainer import Schedule, Trainer
from app.engine.testing import ScriptedLLM
from tests.support.training import HARM, RULE, Counter, World, adding_each, answer_loss, examples


def a_trainer(world: World, **options: Any) -> Trainer:
    module = Counter()
    return Trainer(
        module, examples(8), answer_loss(), SFAOptimizer([module.instruction]),
        valset=examples(10, start=100), schedule=Schedule(epochs=2, batch_size=3, seed=1),
        resources=world.manager, **options,
    )  # fmt: skip


async def test_trainer_state_round_trips_through_json_after_steps() -> None:
    trainer = a_trainer(World(optimizer=ScriptedLLM(adding_each(RULE, HARM))))
    for _ in range(4):
        await trainer.step()
    text = trainer.state.to_json()
    json.loads(text)  # plain JSON
    again = TrainerState.from_json(text)
    assert again == trainer.state
    assert again.to_json() == text
    assert again.history.steps[0].accepted
    assert again.usage["task"]["calls"] == trainer.meter.by_role[Role.TASK].calls > 0


async def test_a_finished_state_round_trips_with_its_stop_reason() -> None:
    trainer = a_trainer(World())
    while not trainer.done:
        await trainer.step()
    again = TrainerState.from_json(trainer.state.to_json())
    assert again.finished
    assert again.history.stop_reason is StopReason.MAX_EPOCHS


async def test_each_step_counts_its_calls_by_role_and_they_add_up_to_the_usage() -> None:
    trainer = a_trainer(World(optimizer=ScriptedLLM(adding_each(RULE, HARM))))
    await trainer.step()  # the baseline
    baseline = {role: int(usage["calls"]) for role, usage in trainer.state.usage.items()}
    while not trainer.done:
        await trainer.step()
    steps = TrainerState.from_json(trainer.state.to_json()).history.steps
    for role in Role:
        spent = baseline[role] + sum(step.calls[role] for step in steps)
        assert spent == trainer.state.usage[role]["calls"]
    assert [step.calls["task"] for step in steps] == [len(step.examples) for step in steps]
    assert [step.calls["validation"] for step in steps] == [10 * step.usable for step in steps]
    assert any(step.usable for step in steps)
    assert not all(step.usable for step in steps)


def test_a_history_saved_before_steps_counted_calls_still_loads() -> None:
    step = {"epoch": 0, "step": 1, "examples": [1], "scores": [1.0]}
    state = TrainerState.from_dict({"history": {"steps": [step]}})
    assert state.history.steps[0].calls == {}


async def test_events_tell_the_run_in_order() -> None:
    events: list[tuple[str, dict[str, Any]]] = []
    module = Counter()
    world = World(optimizer=ScriptedLLM(adding_each(RULE, HARM)))
    await train(
        module, examples(8), answer_loss(), SFAOptimizer([module.instruction]), epochs=1,
        batch_size=4, valset=examples(10, start=100), resources=world.manager,
        on_event=lambda kind, data: events.append((kind, data)),
    )  # fmt: skip
    kinds = [kind for kind, _ in events]
    assert kinds[:2] == ["run_started", "validated"]
    assert kinds[2:9] == [
        "step_started", "batch_scored", "feedback", "proposal", "accepted", "validated", "budget",
    ]  # fmt: skip
    assert "rejected" in kinds
    assert kinds[-1] == "finished"
    data = dict(events)
    assert data["feedback"]["parameter"] == "instruction"
    assert data["proposal"]["edit_ratio"] > 0
    assert "+" in data["proposal"]["diff"]
    assert data["accepted"]["delta"] == 0.5
    assert data["finished"]["stop_reason"] == "max_epochs"
    json.dumps(events)  # every event is JSON-ready
