"""The request specs refuse every malformed body with issues naming the fields, never by
crashing, and hand the engine what it needs (a Budget, verifier params)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from app.engine.optimization.budget import Budget, Limits
from app.engine.optimization.roles import Role
from app.services.errors import InvalidInput
from app.services.optimization.issues import parse
from app.services.optimization.spec import (
    MAX_PATTERN_LENGTH,
    VERIFIER_OPS,
    EvaluationSpec,
    OptimizationSpec,
)

VALID: dict[str, Any] = {
    "graph_id": "extract-and-compare",
    "version": 2,
    "parameters": ["style"],
    "train": "ds-train",
    "val": "ds-val",
    "test": "ds-test",
    "loss": {
        "verifiers": [{"op": "answer_equals", "output": "comparison", "weight": 2}],
        "judge": {"alias": "judge", "rubric": "Is it fair?", "weight": 1},
    },
    "selection_metric": {"verifiers": [{"op": "exact"}]},
    "optimizer": {"critic": "critic", "optimizer": "optimizer", "conservatism": 0.7},
    "schedule": {"epochs": 3, "batch_size": 5},
    "budget": {"max_calls": 5000, "roles": {"judge": {"max_tokens": 100_000}}},
    "seed": 7,
    "min_delta": 0.01,
    "patience": 2,
    "target": 0.9,
    "dry_run": True,
}


def body(**changes: Any) -> dict[str, Any]:
    """VALID with top-level keys replaced (``None`` removes the key)."""
    data = copy.deepcopy(VALID)
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return data


def fields(model: type[OptimizationSpec] | type[EvaluationSpec], data: Any) -> list[str]:
    with pytest.raises(InvalidInput) as caught:
        parse(model, data)
    assert caught.value.detail.startswith(caught.value.issues[0].field)
    return [issue.field for issue in caught.value.issues]


def test_a_full_valid_body_parses_with_its_values() -> None:
    spec = parse(OptimizationSpec, body())
    assert spec.parameters == ["style"]
    assert spec.loss.verifiers[0].params == {"output": "comparison"}
    assert spec.metric is spec.selection_metric
    assert spec.optimizer.conservatism == 0.7
    assert spec.dry_run is True


def test_defaults_train_every_parameter_and_select_by_the_loss() -> None:
    minimal = {
        "graph_id": "g",
        "train": "a",
        "val": "b",
        "loss": {"verifiers": [{"op": "contains"}]},
        "budget": {"max_wall_seconds": 60},
    }
    spec = parse(OptimizationSpec, minimal)
    assert spec.parameters is None
    assert spec.metric is spec.loss
    assert (spec.optimizer.critic, spec.optimizer.optimizer) == ("critic", "optimizer")
    assert spec.dry_run is False


def test_the_budget_becomes_the_engines_budget() -> None:
    budget = parse(OptimizationSpec, body()).budget.to_budget()
    assert budget == Budget(max_calls=5000, roles={Role.JUDGE: Limits(max_tokens=100_000)})
    wall = parse(OptimizationSpec, body(budget={"max_wall_seconds": 30.5})).budget
    assert wall.to_budget().max_wall_s == 30.5


@pytest.mark.parametrize(
    ("budget", "field"),
    [
        ({}, "budget"),
        ({"roles": {}}, "budget"),
        ({"max_calls": -1}, "budget.max_calls"),
        ({"max_calls": 0}, "budget.max_calls"),
        ({"max_tokens": 0}, "budget.max_tokens"),
        ({"max_cost": -0.5}, "budget.max_cost"),
        ({"max_wall_seconds": 0}, "budget.max_wall_seconds"),
        ({"max_calls": "100"}, "budget.max_calls"),
        ({"max_calls": True}, "budget.max_calls"),
        ({"max_calls": 10.5}, "budget.max_calls"),
        ({"max_calls": 10, "max_money": 3}, "budget.max_money"),
        ({"roles": {"judge": {"max_calls": 0}}}, "budget.roles.judge.max_calls"),
        ({"roles": {"critic": {"max_calls": 5}}}, "budget.roles.critic"),
        ({"roles": {"task": {}}}, "budget.roles.task"),
        ({"roles": {"backward": {"max_calls": 5, "calls": 2}}}, "budget.roles.backward.calls"),
        ({"roles": []}, "budget.roles"),
        ("lots", "budget"),
    ],
)
def test_a_malformed_budget_names_its_field(budget: Any, field: str) -> None:
    assert fields(OptimizationSpec, body(budget=budget)) == [field]


def test_a_missing_budget_is_refused() -> None:
    assert fields(OptimizationSpec, body(budget=None)) == ["budget"]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"graph_id": ""}, "graph_id"),
        ({"version": 0}, "version"),
        ({"version": "2"}, "version"),
        ({"parameters": []}, "parameters"),
        ({"parameters": ["style", "style"]}, "parameters"),
        ({"parameters": ["not a name"]}, "parameters[0]"),
        ({"parameters": ["style", 3]}, "parameters[1]"),
        ({"schedule": {"epochs": 0, "batch_size": 5}}, "schedule.epochs"),
        ({"schedule": {"epochs": 1, "batch_size": "5"}}, "schedule.batch_size"),
        ({"schedule": {"epochs": 1, "batch": 5}}, "schedule.batch"),
        ({"optimizer": {"conservatism": 1.5}}, "optimizer.conservatism"),
        ({"optimizer": {"max_edit_ratio": 0}}, "optimizer.max_edit_ratio"),
        ({"optimizer": {"critic": ""}}, "optimizer.critic"),
        ({"optimizer": {"temperature": 0.2}}, "optimizer.temperature"),
        ({"min_delta": -0.1}, "min_delta"),
        ({"patience": 0}, "patience"),
        ({"target": 1.5}, "target"),
        ({"seed": -1}, "seed"),
        ({"dry_run": "yes"}, "dry_run"),
        ({"epochs": 3}, "epochs"),
    ],
)
def test_a_malformed_field_is_named(changes: dict[str, Any], field: str) -> None:
    assert fields(OptimizationSpec, body(**changes)) == [field]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"train": None, "val": None, "test": None}, "train"),
        ({"val": None}, "val"),
        ({"dataset": "ds"}, "train"),
        ({"train": None, "val": None, "test": None, "dataset": "ds"}, "split"),
        ({"train": None, "val": None, "test": None, "split": {"train": 1, "val": 1}}, "dataset"),
    ],
)
def test_the_data_is_separate_datasets_or_one_split(changes: dict[str, Any], field: str) -> None:
    assert fields(OptimizationSpec, body(**changes)) == [field]


def split_body(split: Any) -> dict[str, Any]:
    return body(train=None, val=None, test=None, dataset="ds", split=split)


def test_a_split_of_fractions_or_counts_parses() -> None:
    spec = parse(OptimizationSpec, split_body({"train": 0.2, "val": 0.3, "test": 0.5, "seed": 7}))
    assert spec.split is not None
    assert spec.split.is_fractions
    assert spec.split.seed == 7
    spec = parse(OptimizationSpec, split_body({"train": 20, "val": 30}))
    assert spec.split is not None
    assert not spec.split.is_fractions
    assert spec.split.test == 0


@pytest.mark.parametrize(
    ("split", "field"),
    [
        ({"train": 0.5, "val": 0.4, "test": 0.2}, "split"),
        ({"train": 1.5, "val": 0.1}, "split.train"),
        ({"train": -3, "val": 2}, "split.train"),
        ({"train": 0.5, "val": "0.5"}, "split.val"),
        ({"train": 0.5, "val": True}, "split.val"),
        ({"train": 0.5}, "split.val"),
        ({"train": 0.5, "val": 0.5, "holdout": 0.1}, "split.holdout"),
        ({"train": 0.5, "val": 0.5, "seed": "7"}, "split.seed"),
    ],
)
def test_a_malformed_split_names_its_field(split: Any, field: str) -> None:
    assert fields(OptimizationSpec, split_body(split)) == [field]


def loss_body(loss: Any) -> dict[str, Any]:
    return body(loss=loss)


@pytest.mark.parametrize(
    ("loss", "field"),
    [
        ({}, "loss"),
        ({"verifiers": []}, "loss"),
        ({"verifiers": [{"op": "exact"}, {"op": "python_eval"}]}, "loss.verifiers[1].op"),
        ({"verifiers": [{"weight": 1}]}, "loss.verifiers[0].op"),
        ({"verifiers": [{"op": "exact", "weight": 0}]}, "loss.verifiers[0].weight"),
        ({"verifiers": [{"op": "exact", "code": "1"}]}, "loss.verifiers[0].code"),
        ({"verifiers": [{"op": "exact", "pattern": "a"}]}, "loss.verifiers[0].pattern"),
        ({"verifiers": [{"op": "regex"}]}, "loss.verifiers[0].pattern"),
        ({"verifiers": [{"op": "exact", "output": ""}]}, "loss.verifiers[0].output"),
        ({"judge": {"alias": "judge"}}, "loss.judge.rubric"),
        ({"judge": {"alias": "judge", "rubric": "r", "weight": -1}}, "loss.judge.weight"),
        ({"verifiers": "exact"}, "loss.verifiers"),
    ],
)
def test_a_malformed_loss_names_its_field(loss: Any, field: str) -> None:
    assert fields(OptimizationSpec, loss_body(loss)) == [field]


@pytest.mark.parametrize(
    "pattern",
    [
        r"(a)\1",  # a backreference: needs backtracking, RE2 refuses it
        r"(?=a)b",  # lookahead
        "((a{100}){100}){100}",  # compiles to far more than the program-size limit
        "(",  # not a pattern at all
        "a" * (MAX_PATTERN_LENGTH + 1),
    ],
)
def test_a_hostile_or_broken_regex_is_refused(pattern: str) -> None:
    loss = {"verifiers": [{"op": "regex", "pattern": pattern}]}
    assert fields(OptimizationSpec, loss_body(loss)) == ["loss.verifiers[0].pattern"]


def test_a_plain_regex_is_accepted() -> None:
    loss = {"verifiers": [{"op": "regex", "pattern": r"^Answer:\s*\d+$"}]}
    spec = parse(OptimizationSpec, loss_body(loss))
    assert spec.loss.verifiers[0].params == {"pattern": r"^Answer:\s*\d+$"}


def test_every_verifier_op_of_the_closed_set_parses() -> None:
    for op in sorted(VERIFIER_OPS):
        term = {"op": op, **({"pattern": "x"} if op == "regex" else {})}
        assert parse(OptimizationSpec, loss_body({"verifiers": [term]})).loss.verifiers[0].op == op


def test_every_wrong_field_of_one_body_is_listed() -> None:
    data = body(seed="x", budget={"max_calls": 0})
    data["loss"]["verifiers"][0]["op"] = "nope"
    found = fields(OptimizationSpec, data)
    assert sorted(found) == ["budget.max_calls", "loss.verifiers[0].op", "seed"]


@pytest.mark.parametrize("data", [None, [], "spec", 3])
def test_a_body_that_is_not_an_object_is_refused(data: Any) -> None:
    assert fields(OptimizationSpec, data) == ["(body)"]


EVALUATION: dict[str, Any] = {
    "graph_id": "g",
    "dataset": "ds",
    "loss": {"verifiers": [{"op": "exact"}]},
    "seed": 3,
}


def test_an_evaluation_of_one_version_or_two_paired() -> None:
    assert not parse(EvaluationSpec, {**EVALUATION, "version": 4}).paired
    paired = parse(EvaluationSpec, {**EVALUATION, "versions": [1, 2]})
    assert paired.paired
    assert paired.versions == [1, 2]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"versions": [1]}, "versions"),
        ({"versions": [1, 2, 3]}, "versions"),
        ({"versions": [2, 2]}, "versions"),
        ({"versions": [1, 0]}, "versions[1]"),
        ({"version": 1, "versions": [1, 2]}, "versions"),
        ({"dataset": ""}, "dataset"),
        ({"loss": {"verifiers": [{"op": "eval"}]}}, "loss.verifiers[0].op"),
        ({"seed": 1.5}, "seed"),
        ({"budget": {"max_calls": 5}}, "budget"),
    ],
)
def test_a_malformed_evaluation_names_its_field(changes: dict[str, Any], field: str) -> None:
    assert fields(EvaluationSpec, {**EVALUATION, **changes}) == [field]


def test_an_evaluation_needs_a_dataset_and_a_loss() -> None:
    data = {"graph_id": "g"}
    assert sorted(fields(EvaluationSpec, data)) == ["dataset", "loss"]
