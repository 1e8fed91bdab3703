"""A branch that cannot decide fails its item, naming the node and the value; it never
"succeeds" with a null output."""

from __future__ import annotations

from typing import Any

import pytest

from app.engine import (
    ExecutionError,
    InferenceModule,
    LLMInference,
    NodeStatus,
    branch,
    classify,
    load_graph,
    match_branch,
    run,
)
from app.engine.errors import BranchError, NodeFailure
from app.engine.testing import ScriptedLLM, scripted_manager


class Judged(InferenceModule):
    """A model judges the question; its ``ok`` field picks the arm."""

    def __init__(self) -> None:
        super().__init__()
        self.judge = LLMInference("fast", response_format="json")
        self.yes = LLMInference("fast", system_prompt="yes")
        self.no = LLMInference("fast", system_prompt="no")

    def forward(self, q: str) -> Any:
        verdict = self.judge(q)
        return branch(verdict["ok"], lambda: self.yes(q), lambda: self.no(q))


class Routed(InferenceModule):
    """match_branch without a default."""

    def __init__(self) -> None:
        super().__init__()
        self.answer = LLMInference("fast")

    def forward(self, q: str) -> Any:
        kind = classify(q, {"question": r"\?$"}, default="chat")
        return match_branch(kind, {"question": lambda: self.answer(q)})


def judged_by(verdict: str) -> ScriptedLLM:
    return ScriptedLLM(lambda r: verdict if not r.system else r.system)


async def failures_of(
    target: Any, inputs: Any, llm: ScriptedLLM | None = None
) -> list[NodeFailure]:
    manager = scripted_manager({"fast": llm or ScriptedLLM()})
    with pytest.raises(ExecutionError) as caught:
        await run(target, inputs, resources=manager)
    return caught.value.failures


def guarded_graph(equals: Any) -> Any:
    return load_graph(
        {
            "name": "g",
            "inputs": {"flag": {"type": "any"}},
            "nodes": [
                {
                    "id": "shout",
                    "op": "template",
                    "text": "{flag}!",
                    "when": {"ref": "flag", "equals": equals},
                }
            ],
            "outputs": {"out": "shout"},
        }
    )


async def test_a_non_boolean_branch_condition_fails_naming_node_and_value() -> None:
    failures = await failures_of(Judged(), "q", judged_by('{"ok": "yes"}'))
    assert {f.node for f in failures} == {"yes", "no"}
    assert all('"yes"' in f.error and f.error_type == "BranchError" for f in failures)
    assert all("boolean" in f.error for f in failures)


async def test_a_boolean_branch_condition_still_picks_its_arm() -> None:
    fast = judged_by('{"ok": false}')
    record = await run(Judged(), "q", resources=scripted_manager({"fast": fast}), record=True)
    assert record.outputs == "no"
    assert record.nodes["yes"].status is NodeStatus.SKIPPED


async def test_equals_true_on_a_string_fails_the_node() -> None:
    failures = await failures_of(guarded_graph(True), {"flag": "yes"})
    assert [f.node for f in failures] == ["shout"]
    assert 'must be a JSON boolean (true or false), got "yes"' in failures[0].error


async def test_equals_true_on_true_runs_and_equals_false_skips() -> None:
    assert await run(guarded_graph(True), {"flag": True}) == {"out": "true!"}
    assert await run(guarded_graph(False), {"flag": True}) == {"out": None}


async def test_equals_on_a_non_boolean_value_keeps_json_equality() -> None:
    assert await run(guarded_graph("yes"), {"flag": "no"}) == {"out": None}
    assert await run(guarded_graph(1), {"flag": True}) == {"out": None}


async def test_match_branch_without_match_or_default_fails_the_join() -> None:
    failures = await failures_of(Routed(), "hello")
    assert [f.node for f in failures] == ["coalesce"]
    assert "'classify' is \"chat\"" in failures[0].error
    assert failures[0].error_type == "BranchError"


async def test_match_branch_that_matches_still_runs_its_arm() -> None:
    manager = scripted_manager({"fast": ScriptedLLM()})
    assert await run(Routed(), "why?", resources=manager) == "echo: why?"


async def test_a_coalesce_whose_sources_were_all_skipped_fails() -> None:
    graph = load_graph(
        {
            "name": "g",
            "inputs": {"kind": {}},
            "nodes": [
                {"id": "a", "op": "template", "text": "A", "when": {"ref": "kind", "equals": "a"}},
                {"id": "b", "op": "template", "text": "B", "when": {"ref": "kind", "in": ["b"]}},
                {"id": "reply", "op": "coalesce", "sources": ["a", "b"]},
            ],
            "outputs": {"reply": "reply"},
        }
    )
    assert await run(graph, {"kind": "b"}) == {"reply": "B"}
    failures = await failures_of(graph, {"kind": "z"})
    assert [f.node for f in failures] == ["reply"]
    assert "'kind' is \"z\"" in failures[0].error


def test_eager_branch_needs_a_boolean() -> None:
    with pytest.raises(BranchError, match="'yes'"):
        branch("yes", lambda: 1, lambda: 2)
    assert branch(True, lambda: 1, lambda: 2) == 1


def test_eager_match_branch_without_match_or_default_raises() -> None:
    with pytest.raises(BranchError, match="'z'"):
        match_branch("z", {"a": lambda: 1})
    assert match_branch("a", {"a": lambda: 1}) == 1


async def test_a_condition_on_a_missing_field_fails_too() -> None:
    graph = load_graph(
        {
            "name": "g",
            "inputs": {"verdict": {"type": "object"}},
            "nodes": [
                {
                    "id": "t",
                    "op": "template",
                    "text": "ok",
                    "when": {"ref": "verdict.ok", "equals": True},
                }
            ],
            "outputs": {"out": "t"},
        }
    )
    failures = await failures_of(graph, {"verdict": {"fine": True}})
    assert (
        "condition 'verdict.ok' must be a JSON boolean (true or false), got null"
        in failures[0].error
    )
