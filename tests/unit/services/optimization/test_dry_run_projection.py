"""The dry-run projection counts the calls each role makes and estimates their tokens as
documented, and a budget that cannot pay for a baseline and three steps is refused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from app.engine import Graph
from app.engine.optimization.roles import Role
from app.services.optimization.call_sizes import (
    DEFAULT_OUTPUT_TOKENS,
    FEEDBACK_CHARS,
    JUDGE_OUTPUT_TOKENS,
    CallSizes,
    mean_input_chars,
)
from app.services.optimization.checks import Sizes
from app.services.optimization.issues import parse
from app.services.optimization.projection import Cost, affordable, project
from app.services.optimization.spec import OptimizationSpec

EXAMPLE = Path(__file__).parents[4] / "examples" / "graphs" / "extract-and-compare.json"

LINEAR = Graph.model_validate(
    {
        "name": "linear",
        "inputs": {"q": {}},
        "parameters": {"p": {"value": "Be brief.", "description": "how to answer"}},
        "nodes": [
            {"id": "a", "op": "llm", "alias": "m", "system": "{p}", "prompt": "Q: {q}",
             "max_tokens": 20},
            {"id": "b", "op": "llm", "alias": "m", "prompt": "Check: {a}", "max_tokens": 10},
        ],
        "outputs": {"y": "b"},
    }
)  # fmt: skip

# One extractor read by two checkers: its critic hears from both, once per example.
FAN_OUT = Graph.model_validate(
    {
        "name": "fan-out",
        "inputs": {"doc": {}},
        "parameters": {"rule": {"value": "List the facts.", "description": "extraction rule"}},
        "nodes": [
            {"id": "extract", "op": "llm", "alias": "m", "system": "{rule}", "prompt": "{doc}",
             "max_tokens": 50},
            {"id": "short", "op": "llm", "alias": "m", "system": "{rule}",
             "prompt": "Short? {extract}", "max_tokens": 5},
            {"id": "true", "op": "llm", "alias": "m", "prompt": "True? {extract}",
             "max_tokens": 5},
            {"id": "verdict", "op": "template", "text": "{short} {true}"},
        ],
        "outputs": {"verdict": "verdict"},
    }
)  # fmt: skip


def spec_of(
    epochs: int = 2, batch_size: int = 3, budget: dict[str, Any] | None = None, **more: Any
) -> OptimizationSpec:
    data = {
        "graph_id": "g",
        "train": "t",
        "val": "v",
        "loss": {"verifiers": [{"op": "exact"}]},
        "schedule": {"epochs": epochs, "batch_size": batch_size},
        "budget": budget or {"max_calls": 10**6},
        **more,
    }
    return parse(OptimizationSpec, data)


def calls(costs: dict[Role, Cost]) -> dict[str, int]:
    return {role.value: cost.calls for role, cost in costs.items()}


def test_linear_graph_calls_per_role() -> None:
    projection = project(spec_of(), LINEAR, Sizes(train=7, val=4, test=5), input_chars=40)
    assert projection.steps == 6  # 2 epochs x ceil(7 / 3) batches
    assert calls(projection.roles) == {
        "task": 28,  # 2 epochs x 7 items x 2 llm nodes
        "judge": 0,
        "backward": 28,  # one critic call per llm node per item
        "optimizer": 6,  # one parameter, once per step
        "validation": 66,  # 4 val items x 2 nodes x (baseline + 6 steps) + 5 test items x 2
    }
    assert projection.total.calls == 128


def test_linear_graph_task_tokens_follow_the_rendered_prompts() -> None:
    # a: "Be brief." (9) + "Q: " (3) + 40 input chars = 52 -> 13 in, 20 out
    # b: "Check: " (7) + a's 20 tokens as 80 chars = 87 -> 22 in, 10 out
    projection = project(spec_of(), LINEAR, Sizes(train=7, val=4, test=5), input_chars=40)
    task = projection.roles[Role.TASK]
    assert (task.input_tokens, task.output_tokens) == (14 * 35, 14 * 30)
    validation = projection.roles[Role.VALIDATION]
    assert (validation.input_tokens, validation.output_tokens) == (33 * 35, 33 * 30)


def test_a_judge_in_the_loss_and_in_the_selection_metric() -> None:
    judge = {"alias": "j", "rubric": "Is it right?"}
    spec = spec_of(
        loss={"verifiers": [{"op": "exact"}], "judge": judge},
        selection_metric={"judge": judge},
    )
    projection = project(spec, LINEAR, Sizes(train=7, val=4, test=5), input_chars=40)
    # Graded under judge wherever they grade: 14 trained items, then (4 x 7 + 5) val and
    # test items; the graph's own calls on them stay under validation.
    assert calls(projection.roles)["judge"] == 14 + 33
    assert calls(projection.roles)["validation"] == 66
    assert projection.roles[Role.JUDGE].output_tokens == 47 * JUDGE_OUTPUT_TOKENS
    assert calls(projection.baseline) == {
        "task": 0, "judge": 4, "backward": 0, "optimizer": 0, "validation": 8,
    }  # fmt: skip


def test_a_judge_only_in_the_loss_grades_only_training_items() -> None:
    judged = spec_of(loss={"judge": {"alias": "j", "rubric": "r"}}, selection_metric={
        "verifiers": [{"op": "exact"}]})  # fmt: skip
    projection = project(judged, LINEAR, Sizes(train=7, val=4, test=5))
    assert calls(projection.roles)["judge"] == 14
    assert calls(projection.roles)["validation"] == 66


def test_the_last_short_batch_counts_only_its_items() -> None:
    projection = project(spec_of(epochs=1, batch_size=5), LINEAR, Sizes(train=7, val=1, test=0))
    assert projection.steps == 2
    assert calls(projection.roles)["task"] == 14  # 7 items, not 2 full batches of 5
    assert calls(projection.per_step)["task"] == 10


def test_fan_out_calls_per_role() -> None:
    projection = project(spec_of(epochs=1, batch_size=4), FAN_OUT, Sizes(train=8, val=2, test=3))
    assert calls(projection.roles) == {
        "task": 24,  # 8 items x 3 llm nodes (the template is no call)
        "judge": 0,
        "backward": 24,
        "optimizer": 2,
        "validation": 2 * 3 * 3 + 3 * 3,
    }


def test_a_node_with_two_readers_sends_its_critic_both_feedbacks() -> None:
    sizes = CallSizes(FAN_OUT, input_chars=100)
    single = CallSizes(
        FAN_OUT.model_copy(update={"nodes": FAN_OUT.nodes[:2], "outputs": {"s": "short"}}),
        input_chars=100,
    )
    extra = sizes.critic["extract"].input - single.critic["extract"].input
    assert FEEDBACK_CHARS / 4 <= extra <= FEEDBACK_CHARS / 4 + 5  # one more feedback item


def test_a_parameter_used_at_two_call_sites_gets_feedback_from_both() -> None:
    sizes = CallSizes(FAN_OUT)
    one_site = CallSizes(FAN_OUT.model_copy(update={"nodes": FAN_OUT.nodes[:1],
                                                    "outputs": {"e": "extract"}}))  # fmt: skip
    extra = sizes.optimizer("rule", batch=4).input - one_site.optimizer("rule", batch=4).input
    per_item = FEEDBACK_CHARS / 4
    assert 4 * per_item <= extra <= 4 * (per_item + 15)  # 4 examples x 1 more call site


def test_outputs_without_max_tokens_use_the_default() -> None:
    graph = Graph.model_validate(json.loads(EXAMPLE.read_text(encoding="utf-8")))
    sizes = CallSizes(graph)
    assert sizes.task["facts1"].output == DEFAULT_OUTPUT_TOKENS
    assert sizes.task["compare"].output == 400
    # compare reads both extractions: their default outputs are in its prompt
    assert sizes.task["compare"].input > 2 * DEFAULT_OUTPUT_TOKENS


def test_the_example_graph_projection_adds_up() -> None:
    graph = Graph.model_validate(json.loads(EXAMPLE.read_text(encoding="utf-8")))
    chars = mean_input_chars([{"doc1": "a" * 100, "doc2": "b" * 60}, {"doc1": "c", "doc2": "d"}])
    projection = project(spec_of(epochs=3, batch_size=5), graph, Sizes(50, 100, 100), chars)
    assert projection.steps == 30
    assert calls(projection.roles)["task"] == 3 * 50 * 3
    assert calls(projection.roles)["validation"] == 100 * 3 * 31 + 100 * 3
    document = projection.to_dict()
    assert document["total"] == projection.total.to_dict()
    assert sum(role["calls"] for role in document["roles"].values()) == projection.total.calls
    assert projection.total.tokens == sum(c.tokens for c in projection.roles.values())


def test_mean_input_chars_is_the_mean_json_length() -> None:
    assert mean_input_chars([{"q": "ab"}, {"q": "abcd"}]) == 12  # 11 and 13 characters
    assert mean_input_chars([]) == 0


# Linear graph, 7 train / 4 val, batch 3: baseline 4 x 2 = 8 validation calls; one step is
# 6 task + 6 backward + 1 optimizer + 8 validation = 21 calls; the minimum is 8 + 3 x 21 = 71.
SIZES = Sizes(train=7, val=4, test=5)


def refusals(budget: dict[str, Any], sizes: Sizes = SIZES, **schedule: int) -> dict[str, str]:
    spec = spec_of(budget=budget, **schedule)
    found = affordable(project(spec, LINEAR, sizes, input_chars=40), spec.budget)
    return {issue.field: issue.message for issue in found}


def test_a_budget_too_small_for_a_baseline_three_steps_and_the_test_is_refused() -> None:
    found = refusals({"max_calls": 80})  # 71, and 5 test items through 2 llm nodes
    assert list(found) == ["budget.max_calls"]
    assert found["budget.max_calls"] == (
        "80 calls cannot pay for a baseline validation, 3 steps and the test split: 81 calls"
    )


def test_a_budget_that_pays_for_the_minimum_is_accepted() -> None:
    assert refusals({"max_calls": 81}) == {}
    assert refusals({"max_wall_seconds": 5, "max_cost": 0.01}) == {}  # not projected


@pytest.mark.parametrize(
    ("roles", "field"),
    [
        ({"task": {"max_calls": 17}}, "budget.roles.task.max_calls"),  # needs 3 x 6
        ({"backward": {"max_calls": 17}}, "budget.roles.backward.max_calls"),
        ({"optimizer": {"max_calls": 2}}, "budget.roles.optimizer.max_calls"),  # needs 3
        ({"validation": {"max_calls": 41}}, "budget.roles.validation.max_calls"),  # 8+3x8+10
        ({"optimizer": {"max_tokens": 10}}, "budget.roles.optimizer.max_tokens"),
    ],
)
def test_a_role_cap_too_small_is_refused_by_name(roles: dict[str, Any], field: str) -> None:
    assert list(refusals({"roles": roles})) == [field]


def test_role_caps_that_pay_for_the_minimum_are_accepted() -> None:
    roles = {"task": {"max_calls": 18}, "optimizer": {"max_calls": 3}, "validation": {
        "max_calls": 42}, "judge": {"max_calls": 1}}  # fmt: skip
    assert refusals({"roles": roles}) == {}


def test_a_judge_cap_must_pay_for_grading_validation_too() -> None:
    # The metric's judge grades 3 x 3 training items, 4 + 3 x 4 validation items and 5 test
    # items: 30.
    judge = {"judge": {"alias": "j", "rubric": "r"}}
    spec = spec_of(loss=judge, budget={"roles": {"judge": {"max_calls": 29}}})
    found = affordable(project(spec, LINEAR, SIZES), spec.budget)
    assert [issue.field for issue in found] == ["budget.roles.judge.max_calls"]
    spec = spec_of(loss=judge, budget={"roles": {"judge": {"max_calls": 30}}})
    assert affordable(project(spec, LINEAR, SIZES), spec.budget) == []


def test_overall_tokens_too_few_are_refused() -> None:
    spec = spec_of()
    minimum = sum(c.tokens for c in project(spec, LINEAR, SIZES, 40).minimum().values())
    assert list(refusals({"max_tokens": minimum - 1})) == ["budget.max_tokens"]
    assert refusals({"max_tokens": minimum}) == {}


def test_a_run_shorter_than_three_steps_needs_only_its_steps() -> None:
    # 2 items, batch 5, 1 epoch: one step of 4 task + 4 backward + 1 optimizer + 8 validation
    found = refusals({"max_calls": 24}, Sizes(2, 4, 0), epochs=1, batch_size=5)
    assert found == {
        "budget.max_calls": "24 calls cannot pay for a baseline validation and 1 step: 25 calls"
    }
    assert refusals({"max_calls": 25}, Sizes(2, 4, 0), epochs=1, batch_size=5) == {}
