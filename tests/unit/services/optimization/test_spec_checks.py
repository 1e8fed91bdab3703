"""A well-formed spec naming what does not exist (parameters, datasets, aliases, outputs) or a
split that leaves nothing to train or validate on gets issues naming each field."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from app.engine import Graph
from app.services.optimization.checks import (
    Sizes,
    data_sizes,
    evaluation_issues,
    optimization_issues,
    trained_parameters,
)
from app.services.optimization.issues import invalid, parse
from app.services.optimization.spec import EvaluationSpec, OptimizationSpec

EXAMPLE = Path(__file__).parents[4] / "examples" / "graphs" / "extract-and-compare.json"
DATASETS = {"ds-train": 50, "ds-val": 100, "ds-test": 100, "ds-all": 250, "empty": 0}
ALIASES = {"fast", "smart", "critic", "optimizer", "judge"}

VALID: dict[str, Any] = {
    "graph_id": "extract-and-compare",
    "train": "ds-train",
    "val": "ds-val",
    "test": "ds-test",
    "loss": {
        "verifiers": [{"op": "contains", "output": "comparison"}],
        "judge": {"alias": "judge", "rubric": "Is the comparison fair?"},
    },
    "budget": {"max_calls": 10_000},
}


@pytest.fixture(scope="module")
def graph() -> Graph:
    """The example graph, with a frozen (non-trainable) parameter added."""
    data = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    data["parameters"]["tone"] = {"value": "Neutral.", "trainable": False}
    return Graph.model_validate(data)


def spec_of(**changes: Any) -> OptimizationSpec:
    data = copy.deepcopy(VALID)
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return parse(OptimizationSpec, data)


def issues(graph: Graph, **changes: Any) -> dict[str, str]:
    found = optimization_issues(spec_of(**changes), graph, DATASETS, ALIASES)
    return {issue.field: issue.message for issue in found}


def test_a_spec_naming_what_exists_has_no_issues(graph: Graph) -> None:
    assert issues(graph) == {}
    assert issues(graph, parameters=["style"]) == {}


def test_unknown_and_frozen_parameters_are_named_by_position(graph: Graph) -> None:
    found = issues(graph, parameters=["style", "voice", "tone"])
    assert set(found) == {"parameters[1]", "parameters[2]"}
    assert "unknown parameter 'voice'" in found["parameters[1]"]
    assert "style" in found["parameters[1]"]  # says what the graph has
    assert found["parameters[2]"] == "parameter 'tone' is not trainable"


def test_a_graph_without_trainable_parameters_cannot_be_trained(graph: Graph) -> None:
    frozen = graph.model_copy(update={"parameters": {"tone": graph.parameters["tone"]}})
    found = optimization_issues(spec_of(), frozen, DATASETS, ALIASES)
    assert [(i.field, i.message) for i in found] == [
        ("parameters", "the graph has no trainable parameters")
    ]


def with_dead_ends(graph: Graph) -> Graph:
    """The graph plus a parameter no node reads and one read only by a node no output needs."""
    data = graph.model_dump(mode="json")
    data["parameters"]["unread"] = {"value": "Never used."}
    data["parameters"]["dangling"] = {"value": "Feeds nothing."}
    data["nodes"].append({"id": "aside", "op": "llm", "alias": "fast", "prompt": "{dangling}"})
    return Graph.model_validate(data)


def test_a_parameter_feedback_cannot_reach_is_refused(graph: Graph) -> None:
    dead_ends = with_dead_ends(graph)
    spec = spec_of(parameters=["style", "unread", "dangling"])
    found = optimization_issues(spec, dead_ends, DATASETS, ALIASES)
    assert [issue.field for issue in found] == ["parameters[1]", "parameters[2]"]
    assert "could never change" in found[1].message


def test_training_every_parameter_refuses_one_feedback_cannot_reach(graph: Graph) -> None:
    found = optimization_issues(spec_of(), with_dead_ends(graph), DATASETS, ALIASES)
    assert [issue.field for issue in found] == ["parameters", "parameters"]
    assert "'unread'" in found[0].message
    assert "'dangling'" in found[1].message


def test_a_parameter_read_through_a_template_is_reachable() -> None:
    graph = Graph.model_validate({
        "name": "t", "inputs": {"q": {}}, "parameters": {"p": {"value": "Be brief."}},
        "nodes": [{"id": "sys", "op": "template", "text": "{p} Today."},
                  {"id": "a", "op": "llm", "alias": "fast", "system": "{sys}", "prompt": "{q}"}],
        "outputs": {"y": "a"},
    })  # fmt: skip
    assert optimization_issues(spec_of(loss={"verifiers": [{"op": "exact"}]}), graph, DATASETS,
                               ALIASES) == []  # fmt: skip


def test_by_default_every_trainable_parameter_is_trained(graph: Graph) -> None:
    assert trained_parameters(spec_of(), graph) == ["style"]
    assert trained_parameters(spec_of(parameters=["style"]), graph) == ["style"]


@pytest.mark.parametrize("field", ["train", "val", "test"])
def test_an_unknown_dataset_is_named(graph: Graph, field: str) -> None:
    assert issues(graph, **{field: "nope"}) == {field: "unknown dataset 'nope'"}


def test_an_empty_dataset_is_refused(graph: Graph) -> None:
    assert issues(graph, val="empty") == {"val": "dataset 'empty' has no items"}


def test_the_test_dataset_cannot_be_a_training_one(graph: Graph) -> None:
    assert set(issues(graph, test="ds-train")) == {"test"}
    assert set(issues(graph, test="ds-val")) == {"test"}


def split(values: dict[str, Any], dataset: str = "ds-all") -> dict[str, Any]:
    return {"train": None, "val": None, "test": None, "dataset": dataset, "split": values}


def test_a_split_of_a_known_dataset_has_no_issues(graph: Graph) -> None:
    assert issues(graph, **split({"train": 0.2, "val": 0.4, "test": 0.4, "seed": 7})) == {}


def test_a_split_of_an_unknown_dataset_names_the_dataset(graph: Graph) -> None:
    assert issues(graph, **split({"train": 0.5, "val": 0.5}, dataset="nope")) == {
        "dataset": "unknown dataset 'nope'"
    }


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"train": 0.001, "val": 0.5}, "split.train"),  # 250 items: rounds to 0
        ({"train": 0.5, "val": 0.0}, "split.val"),
        ({"train": 0, "val": 10}, "split.train"),
        ({"train": 200, "val": 100}, "split"),  # more items than the dataset has
    ],
)
def test_a_split_leaving_train_or_val_empty_is_named(
    graph: Graph, values: dict[str, Any], field: str
) -> None:
    assert set(issues(graph, **split(values))) == {field}


def test_unknown_aliases_are_named(graph: Graph) -> None:
    changes = {
        "optimizer": {"critic": "crit", "optimizer": "opt"},
        "loss": {"judge": {"alias": "judgy", "rubric": "r"}},
        "selection_metric": {"judge": {"alias": "grader", "rubric": "r"}},
    }
    found = issues(graph, **changes)
    assert set(found) == {
        "optimizer.critic",
        "optimizer.optimizer",
        "loss.judge.alias",
        "selection_metric.judge.alias",
    }
    assert found["optimizer.critic"].startswith("unknown endpoint alias 'crit' (known: critic,")


def test_the_default_aliases_must_be_configured(graph: Graph) -> None:
    found = optimization_issues(
        spec_of(optimizer=None), graph, DATASETS, {"fast", "smart", "judge"}
    )
    assert [issue.field for issue in found] == ["optimizer.critic", "optimizer.optimizer"]


def test_an_output_key_not_in_the_graph_is_named(graph: Graph) -> None:
    loss = {"verifiers": [{"op": "exact"}, {"op": "exact", "output": "summary"}]}
    found = issues(
        graph, loss=loss, selection_metric={"verifiers": [{"op": "exact", "output": "x"}]}
    )
    assert set(found) == {"loss.verifiers[1].output", "selection_metric.verifiers[0].output"}
    assert "no output 'summary' (outputs: comparison)" in found["loss.verifiers[1].output"]


def test_a_verifier_must_name_its_output_when_the_graph_has_several(graph: Graph) -> None:
    two = graph.model_copy(update={"outputs": {"comparison": "compare", "facts": "facts1"}})
    loss = {"verifiers": [{"op": "exact"}, {"op": "exact", "output": "facts"}]}
    found = optimization_issues(spec_of(loss=loss), two, DATASETS, ALIASES)
    assert [issue.field for issue in found] == ["loss.verifiers[0].output"]


def test_the_issues_become_one_invalid_input_naming_every_field(graph: Graph) -> None:
    found = optimization_issues(
        spec_of(parameters=["voice"], train="nope"), graph, DATASETS, ALIASES
    )
    error = invalid(found)
    assert [issue.to_dict()["field"] for issue in error.issues] == ["parameters[0]", "train"]
    assert error.detail.startswith("parameters[0]: unknown parameter 'voice'")
    assert error.detail.endswith("(and 1 more)")


def test_data_sizes_of_separate_datasets_and_of_a_split() -> None:
    assert data_sizes(spec_of(), DATASETS) == Sizes(train=50, val=100, test=100)
    assert data_sizes(spec_of(test=None), DATASETS) == Sizes(train=50, val=100, test=0)
    spec = spec_of(**split({"train": 0.2, "val": 0.4, "test": 0.4}))
    assert data_sizes(spec, DATASETS) == Sizes(train=50, val=100, test=100)


EVALUATION: dict[str, Any] = {
    "graph_id": "extract-and-compare",
    "versions": [1, 2],
    "dataset": "ds-test",
    "loss": {"verifiers": [{"op": "exact", "output": "comparison"}]},
}


def test_an_evaluation_is_checked_against_both_versions(graph: Graph) -> None:
    spec = parse(EvaluationSpec, EVALUATION)
    assert evaluation_issues(spec, [graph, graph], DATASETS, ALIASES) == []
    renamed = graph.model_copy(update={"outputs": {"answer": "compare"}})
    found = evaluation_issues(spec, [graph, renamed], DATASETS, ALIASES)
    assert [issue.field for issue in found] == ["loss.verifiers[0].output"]


def test_an_evaluation_names_an_unknown_dataset_and_judge_once(graph: Graph) -> None:
    data = {
        **EVALUATION,
        "dataset": "nope",
        "loss": {"judge": {"alias": "nobody", "rubric": "r"}},
    }
    found = evaluation_issues(parse(EvaluationSpec, data), [graph, graph], DATASETS, ALIASES)
    assert [issue.field for issue in found] == ["dataset", "loss.judge.alias"]
