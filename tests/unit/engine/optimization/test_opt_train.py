"""train() and the Trainer in the scripted world of tests/support/training.py: the gate,
budgets, stalls, preflight, determinism and resume."""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections import Counter as Tally
from typing import Any

import pytest

from app.engine import InferenceModule, LLMInference, Parameter
from app.engine.errors import ConfigError, PermanentLLMError
from app.engine.optimization.budget import Budget, Limits
from app.engine.optimization.history import StopReason, TrainingHistory
from app.engine.optimization.losses import VerifierLoss
from app.engine.optimization.roles import Role
from app.engine.optimization.sfa import SFAOptimizer
from app.engine.optimization.state import TrainerState
from app.engine.optimization.train import train
from app.engine.optimization.trainer import Schedule, Trainer
from app.engine.optimization.verifiers import verifier
from app.engine.testing import ScriptedLLM
from tests.support.training import (
    HARM,
    RULE,
    SEED_PROMPT,
    Counter,
    World,
    adding,
    adding_each,
    answer_loss,
    critic_reply,
    examples,
    task_reply,
)

TRAIN = examples(8)
VAL = examples(10, start=100)


async def fit(world: World, module: Counter | None = None, **options: Any) -> TrainingHistory:
    module = module or Counter()
    optimizer = SFAOptimizer(list(module.parameters()))
    options = {"epochs": 2, "batch_size": 4, "valset": VAL, **options}
    return await train(module, TRAIN, answer_loss(), optimizer, resources=world.manager, **options)


async def test_a_useful_rule_is_learned_and_validated() -> None:
    module = Counter()
    history = await fit(World(), module)
    assert history.baseline == 0.5
    first = history.steps[0]
    assert first.accepted
    assert first.delta == 0.5
    assert first.proposals[0].new == f"{SEED_PROMPT} {RULE}"
    assert "+" in first.proposals[0].diff
    assert history.best_score == 1.0
    assert history.best_step == 1
    assert history.best_values == {"instruction": f"{SEED_PROMPT} {RULE}"}
    assert module.instruction.value == f"{SEED_PROMPT} {RULE}"
    assert history.stop_reason is StopReason.MAX_EPOCHS


async def test_feedback_carries_its_provenance_into_the_step() -> None:
    history = await fit(World(), epochs=1)
    first = history.steps[0]
    wrong = sum(1 for score in first.scores if score == 0.0)
    assert first.feedback == {"instruction": {"llm": wrong}}


async def test_a_harmful_proposal_is_rejected_and_never_becomes_best() -> None:
    world = World(optimizer=ScriptedLLM(adding(HARM)))
    module = Counter()
    history = await fit(world, module)
    assert history.steps
    assert all(not step.accepted for step in history.steps)
    assert all(step.delta is not None and step.delta < 0 for step in history.steps)
    assert "fails the gate" in history.steps[0].reason
    assert history.best_values == {"instruction": SEED_PROMPT}
    assert history.best_score == history.baseline == 0.5
    assert module.instruction.value == SEED_PROMPT


async def test_min_delta_holds_back_a_gain_below_it() -> None:
    history = await fit(World(), min_delta=0.6, epochs=1)
    assert history.steps[0].delta == 0.5
    assert not history.steps[0].accepted
    assert history.best_values == {"instruction": SEED_PROMPT}


async def test_without_a_valset_the_gate_uses_the_batch() -> None:
    world = World()
    history = await fit(world, valset=None, epochs=1)
    first = history.steps[0]
    fixable = [i for i in first.examples if isinstance(i, int) and i % 2 and i != 7]
    assert first.accepted
    assert first.delta == pytest.approx(len(fixable) / len(first.examples))
    asked = {r.prompt for r in world.task.calls}
    assert not any("item 100" in prompt for prompt in asked)


def wrong_answers() -> VerifierLoss:
    """A selection metric that disagrees with the loss: a wrong answer scores 1."""
    check = verifier("answer_equals")
    return VerifierLoss(lambda output, expected: check(output, expected).score == 0.0)


async def test_the_gate_and_the_best_score_by_the_metric_not_the_loss() -> None:
    module = Counter()
    history = await fit(World(), module, metric=wrong_answers(), epochs=1)
    first = history.steps[0]
    assert first.delta == -0.5  # the loss would have gained +0.5 with the rule
    assert not first.accepted
    assert first.scores == [1.0 if i % 2 == 0 else 0.0 for i in first.examples]  # the loss's
    assert history.best_values == {"instruction": SEED_PROMPT}
    assert module.instruction.value == SEED_PROMPT


async def test_a_proposal_the_metric_prefers_is_kept_and_reaches_its_target() -> None:
    world = World(optimizer=ScriptedLLM(adding(HARM)))
    history = await fit(world, metric=wrong_answers(), target=1.0, epochs=3)
    assert history.steps[0].accepted
    assert history.best_score == 1.0  # every answer wrong: the loss scores it 0
    assert history.stop_reason is StopReason.TARGET_REACHED
    assert len(history.steps) == 1


async def test_without_a_valset_the_batch_gate_scores_both_sides_by_the_metric() -> None:
    world = World()
    history = await fit(world, valset=None, metric=wrong_answers(), epochs=1)
    first = history.steps[0]
    fixable = [i for i in first.examples if isinstance(i, int) and i % 2 and i != 7]
    assert first.delta == pytest.approx(-len(fixable) / len(first.examples))
    assert not first.accepted
    assert len(world.task.calls) == 2 * len(TRAIN)  # batch and candidate: no incumbent rerun


async def test_patience_stops_after_steps_without_a_gain() -> None:
    world = World(optimizer=ScriptedLLM(adding(HARM)))
    history = await fit(world, patience=2, epochs=5)
    assert history.stop_reason is StopReason.EARLY_STOPPED
    assert len(history.steps) == 2


async def test_a_reached_target_stops_the_run() -> None:
    history = await fit(World(), target=1.0, epochs=5)
    assert history.stop_reason is StopReason.TARGET_REACHED
    assert len(history.steps) == 1


# -- budgets -------------------------------------------------------------------------------


async def test_the_calls_cap_stops_at_the_cap() -> None:
    world = World()
    history = await fit(world, budget=Budget(max_calls=25))
    assert history.stop_reason is StopReason.BUDGET_EXHAUSTED
    assert history.error is not None
    assert history.error.startswith("max_calls")
    spent = sum(int(usage["calls"]) for usage in history.usage.values())
    assert spent == world.calls <= 25
    assert spent > 25 - 10  # it stopped only when the next dispatch (at most 10 calls) did not fit


async def test_a_per_role_cap_stops_at_that_roles_cap() -> None:
    world = World(optimizer=ScriptedLLM(adding(HARM)))
    limits = {Role.OPTIMIZER: Limits(max_calls=1)}
    history = await fit(world, budget=Budget(roles=limits), epochs=3)
    assert history.stop_reason is StopReason.BUDGET_EXHAUSTED
    assert history.error is not None
    assert history.error.startswith("optimizer.max_calls")
    assert len(world.optimizer.calls) == 1
    assert history.usage["optimizer"]["calls"] == 1


async def test_the_tokens_cap_stops_once_reached() -> None:
    uncapped = World()
    full = await fit(uncapped)
    tokens = sum(u["input_tokens"] + u["output_tokens"] for u in full.usage.values())
    world = World()
    history = await fit(world, budget=Budget(max_tokens=int(tokens / 3)))
    assert history.stop_reason is StopReason.BUDGET_EXHAUSTED
    assert history.error is not None
    assert history.error.startswith("max_tokens")
    assert world.calls < uncapped.calls
    spent = sum(u["input_tokens"] + u["output_tokens"] for u in history.usage.values())
    assert spent <= int(tokens / 3)


async def test_a_role_tokens_cap_is_never_passed_by_concurrent_calls() -> None:
    world = World(critic=ScriptedLLM(critic_reply, latency_s=0.01))
    history = await fit(world, budget=Budget(roles={Role.BACKWARD: Limits(max_tokens=600)}))
    assert history.stop_reason is StopReason.BUDGET_EXHAUSTED
    assert history.error is not None
    assert history.error.startswith("backward.max_tokens")
    backward = history.usage["backward"]
    assert 0 < backward["input_tokens"] + backward["output_tokens"] <= 600


async def test_the_cost_cap_stops_at_the_cap() -> None:
    uncapped = World(price_per_million=10.0)
    cap = sum(u["cost"] for u in (await fit(uncapped)).usage.values()) / 3
    world = World(price_per_million=10.0)
    history = await fit(world, budget=Budget(max_cost=cap))
    assert history.stop_reason is StopReason.BUDGET_EXHAUSTED
    assert history.error is not None
    assert history.error.startswith("max_cost")
    assert world.calls < uncapped.calls
    assert sum(u["cost"] for u in history.usage.values()) <= cap


async def test_the_wall_cap_stops_by_the_injected_clock() -> None:
    now = [0.0]

    def ticking(request: Any) -> str:
        now[0] += 1.0  # every task call takes a second
        return task_reply(request)

    world = World(task=ScriptedLLM(ticking))
    history = await fit(world, budget=Budget(max_wall_s=15), clock=lambda: now[0])
    assert history.stop_reason is StopReason.BUDGET_EXHAUSTED
    assert history.error is not None
    assert history.error.startswith("max_wall_s")
    assert 15 <= now[0] < 15 + 10


async def test_a_step_in_flight_is_stopped_at_the_wall_deadline() -> None:
    slow = World(optimizer=ScriptedLLM(adding(RULE), latency_s=5.0))
    module = Counter()
    trainer = Trainer(
        module, TRAIN, answer_loss(), SFAOptimizer(list(module.parameters())), valset=VAL,
        budget=Budget(max_wall_s=0.5), resources=slow.manager,
    )  # fmt: skip
    started = time.monotonic()
    while not trainer.done:
        await trainer.step()
    assert time.monotonic() - started < 0.5 + 1.0  # not the 5 s of the optimizer's call
    history = trainer.history
    assert history.stop_reason is StopReason.BUDGET_EXHAUSTED
    assert history.error is not None
    assert history.error.startswith("max_wall_s")
    state = trainer.state
    assert (state.step, state.cursor, history.steps) == (0, 0, [])  # no half step kept
    assert state.values == {"instruction": SEED_PROMPT}
    assert history.baseline == 0.5


async def test_a_budget_stop_keeps_the_best_so_far() -> None:
    module = Counter()
    world = World(optimizer=ScriptedLLM(adding_each(RULE, HARM)))
    history = await fit(world, module, budget=Budget(roles={Role.VALIDATION: Limits(max_calls=25)}))
    assert history.stop_reason is StopReason.BUDGET_EXHAUSTED
    assert history.best_values == {"instruction": f"{SEED_PROMPT} {RULE}"}
    assert module.instruction.value == f"{SEED_PROMPT} {RULE}"


# -- stalls --------------------------------------------------------------------------------


async def test_a_critic_whose_every_call_fails_stalls_with_the_root_error() -> None:
    world = World(critic=ScriptedLLM(lambda r: PermanentLLMError("401 from the critic endpoint")))
    history = await fit(world, epochs=3)
    assert history.stop_reason is StopReason.STALLED
    assert history.error is not None
    assert "401 from the critic endpoint" in history.error
    assert len(history.steps) == 3  # stall_steps
    assert world.optimizer.calls == []
    assert history.best_values == {"instruction": SEED_PROMPT}


async def test_an_optimizer_that_never_parses_stalls() -> None:
    world = World(optimizer=ScriptedLLM(lambda r: "Sure, here is a better prompt!"))
    history = await fit(world, epochs=1)
    assert history.stop_reason is StopReason.STALLED
    assert "unparsed" in (history.error or "")


async def test_a_failed_forward_scores_the_failure_score_and_is_counted() -> None:
    def flaky(request: Any) -> Any:
        return PermanentLLMError("boom") if "item 3" in request.prompt else task_reply(request)

    history = await fit(World(task=ScriptedLLM(flaky)), valset=None, epochs=1, shuffle=False)
    first = history.steps[0]
    assert first.scores[3] == 0.0
    assert any("boom" in error for error in first.errors)


# -- preflight -----------------------------------------------------------------------------


class WithSideCall(InferenceModule):
    def __init__(self) -> None:
        super().__init__()
        self.instruction = Parameter(SEED_PROMPT, description="how to count")
        self.side = Parameter("Note the mood.", description="a side note nobody reads")
        self.unused = Parameter("Never used.", description="not in forward")
        self.llm = LLMInference("task", system_prompt=self.instruction)
        self.aside = LLMInference("task", system_prompt=self.side)

    def forward(self, question: str) -> Any:
        self.aside(question)
        return self.llm(question)


@pytest.mark.parametrize(
    ("name", "problem"),
    [("unused", "not used in the traced forward"), ("side", "not reachable backward")],
)
async def test_preflight_refuses_a_parameter_that_cannot_learn_before_any_call(
    name: str, problem: str
) -> None:
    world = World()
    module = WithSideCall()
    optimizer = SFAOptimizer({name: getattr(module, name), "instruction": module.instruction})
    with pytest.raises(ConfigError, match=f"{name}.*{problem}"):
        await train(module, TRAIN, answer_loss(), optimizer, resources=world.manager)
    assert world.calls == 0


async def test_preflight_refuses_a_frozen_parameter() -> None:
    module = Counter()
    module.instruction.requires_grad = False
    with pytest.raises(ConfigError, match="not trainable"):
        Trainer(
            module,
            TRAIN,
            answer_loss(),
            SFAOptimizer([module.instruction]),
            resources=World().manager,
        )


async def test_an_unbound_optimizer_without_resources_is_refused() -> None:
    module = Counter()
    with pytest.raises(ConfigError, match="bind the optimizer"):
        Trainer(module, TRAIN, answer_loss(), SFAOptimizer([module.instruction]))


# -- determinism and resume ----------------------------------------------------------------


async def test_the_same_seed_gives_the_same_history() -> None:
    first = await fit(World(), seed=7, epochs=3, batch_size=3)
    second = await fit(World(), seed=7, epochs=3, batch_size=3)
    other = await fit(World(), seed=8, epochs=3, batch_size=3)
    assert first.to_dict() == second.to_dict()
    assert [s.examples for s in first.steps] != [s.examples for s in other.steps]


def trainer(world: World, state: TrainerState | None = None) -> Trainer:
    module = Counter()
    options: dict[str, Any] = {
        "valset": VAL, "schedule": Schedule(epochs=2, batch_size=3, seed=5),
        "resources": world.manager,
    }  # fmt: skip
    args = (module, TRAIN, answer_loss(), SFAOptimizer([module.instruction]))
    if state is None:
        return Trainer(*args, **options)
    return Trainer.resume(state, *args, **options)


@pytest.mark.parametrize("after", [0, 1, 2, 4])
async def test_resume_after_step_k_ends_with_the_uninterrupted_history(after: int) -> None:
    whole_world = World(optimizer=ScriptedLLM(adding(HARM)))  # every step validates
    whole = trainer(whole_world)
    while not whole.done:
        await whole.step()

    first_world = World(optimizer=ScriptedLLM(adding(HARM)))
    first = trainer(first_world)
    for _ in range(after + 1):  # the baseline, then `after` steps
        await first.step()
    saved = first.state.to_json()

    rest_world = World(optimizer=ScriptedLLM(adding(HARM)))
    rest = trainer(rest_world, TrainerState.from_json(saved))
    while not rest.done:
        await rest.step()

    assert rest.history.to_dict() == whole.history.to_dict()
    assert len(whole.history.steps) > after
    assert rest_world.calls > 0
    for role in ("task", "critic", "optimizer"):  # every request made once, none again
        made = requests(first_world, role) + requests(rest_world, role)
        assert made == requests(whole_world, role)


def requests(world: World, role: str) -> Tally[tuple[str, str]]:
    client: ScriptedLLM = getattr(world, role)
    return Tally((r.system, r.prompt) for r in client.calls)


# -- the shuffled-feedback control ---------------------------------------------------------


def about(prompt: str) -> tuple[str, str]:
    """(the item a critic request's step ran on, the item its loss text is about)."""
    [item] = re.findall(r"How many\? item (\d+)", prompt)
    [told] = re.findall(r"expected answer is '(\d+)'|final answer '(\d+)' is correct", prompt)
    return item, told[0] or told[1]


async def test_shuffled_feedback_gives_each_critic_another_examples_loss_text() -> None:
    world = World()
    await fit(world, epochs=1, shuffle_feedback=True)
    pairs = [about(r.prompt) for r in world.critic.calls]
    assert len(pairs) == len(TRAIN)
    assert all(item != told for item, told in pairs)


async def test_without_shuffling_each_critic_reads_its_own_examples_loss_text() -> None:
    world = World()
    await fit(world, epochs=1)
    pairs = [about(r.prompt) for r in world.critic.calls]
    assert len(pairs) == len(TRAIN)
    assert all(item == told for item, told in pairs)


async def test_a_state_is_not_resumed_by_a_run_with_another_schedule_or_data() -> None:
    world = World()
    first = trainer(world)
    await first.step()
    saved = first.state.to_json()
    module = Counter()
    args = (module, TRAIN, answer_loss(), SFAOptimizer([module.instruction]))
    for options in (
        {"valset": VAL, "schedule": Schedule(epochs=2, batch_size=3, seed=6)},
        {"valset": VAL[:5], "schedule": Schedule(epochs=2, batch_size=3, seed=5)},
    ):
        with pytest.raises(ConfigError, match="another schedule"):
            Trainer.resume(TrainerState.from_json(saved), *args, resources=world.manager, **options)


async def test_a_bound_module_lends_its_resources_to_the_critic_and_the_optimizer() -> None:
    world = World()
    module = Counter()
    module.bind(world.manager)
    history = await train(
        module, TRAIN, answer_loss(), SFAOptimizer([module.instruction]), valset=VAL
    )
    assert history.accepted
    assert world.critic.calls
    assert world.optimizer.calls


class Jittery(ScriptedLLM):
    """Answers after a random delay, so concurrent calls finish in a random order."""

    async def complete(self, request: Any) -> Any:
        await asyncio.sleep(random.random() / 200)
        return await super().complete(request)


async def test_the_history_does_not_depend_on_the_order_calls_finish_in() -> None:
    def jittery_world() -> World:
        return World(
            task=Jittery(task_reply), critic=Jittery(critic_reply),
            optimizer=Jittery(adding_each(RULE, HARM)),
        )  # fmt: skip

    first = await fit(jittery_world(), seed=3, epochs=2, batch_size=4)
    second = await fit(jittery_world(), seed=3, epochs=2, batch_size=4)
    assert first.to_dict() == second.to_dict()
    assert first.steps[0].feedback["instruction"]["llm"] >= 2  # several critics ran at once


async def test_without_a_valset_a_target_never_stops_the_run() -> None:
    history = await fit(World(), valset=None, target=0.5, epochs=1)
    assert history.stop_reason is StopReason.MAX_EPOCHS
