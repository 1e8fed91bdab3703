"""The textual backward pass: feedback reaches every upstream parameter with provenance,
fan-out is aggregated into one critic call, and only the nodes that ran take part."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from app.engine import (
    InferenceModule,
    LLMInference,
    Parameter,
    classify,
    load_graph,
    match_branch,
    run,
)
from app.engine.errors import ConfigError, PermanentLLMError
from app.engine.llm import LLMRequest
from app.engine.optimization import Feedback, VerifierLoss, verifier
from app.engine.optimization.backward import LOSS
from app.engine.optimization.prompts import RETRY_NOTE
from app.engine.testing import ScriptedLLM, scripted_manager
from tests.support.optimization import (
    LINEAR,
    critic_calls,
    forward,
    items_of,
    llm,
    node_of,
    param,
    tagging_critic,
    targets_of,
)

LOSS_TEXT = "The final answer was '41'; the expected answer is '42'."


DIAMOND = {
    "name": "diamond",
    "inputs": {"question": {}},
    "parameters": {
        name: param(f"Do {name}.", f"instructions of {name}") for name in ("ps", "pl", "pr", "pf")
    },
    "nodes": [
        llm("shared", "{ps}", "{question}"),
        llm("left", "{pl}", "Left: {shared}"),
        llm("right", "{pr}", "Right: {shared}"),
        llm("final", "{pf}", "{left} / {right}"),
    ],
    "outputs": {"answer": "final"},
}


def clients(critic: Any = tagging_critic) -> tuple[ScriptedLLM, ScriptedLLM, Any]:
    task = ScriptedLLM(lambda request: f"reply to {request.prompt[:30]}")
    judge = ScriptedLLM(critic)
    return task, judge, scripted_manager({"task": task, "critic": judge})


async def test_linear_graph_feedback_reaches_every_parameter_with_provenance() -> None:
    _, critic, resources = clients()
    record = await forward(load_graph(LINEAR), {"question": "6*7?"}, resources)

    result = await Feedback(0.0, LOSS_TEXT, record, example=7).backward()

    (on_p2,) = result.parameters["p2"]
    assert (on_p2.target, on_p2.node, on_p2.example, on_p2.score) == ("p2", "final", 7, 0.0)
    assert on_p2.text == f"[final->p2] heard: {LOSS_TEXT}"
    (on_p1,) = result.parameters["p1"]
    assert (on_p1.target, on_p1.node, on_p1.example) == ("p1", "draft", 7)
    # the draft's critic heard what the final step's critic said about the draft's output
    assert on_p1.text == f"[draft->p1] heard: [final->draft] heard: {LOSS_TEXT}"
    assert [item.node for item in result.nodes["draft"]] == ["final"]
    assert result.nodes["final"][0].node == LOSS
    assert (result.calls, result.unparsed) == (2, 0)
    # the critic of "final" is asked about the draft inside the template, not the template
    assert [targets_of(request) for request in critic.calls] == [["p2", "draft"], ["p1"]]
    assert "wrap" not in result.nodes


async def test_data_nodes_pass_feedback_through_without_a_call() -> None:
    graph = {
        "name": "data_path",
        "inputs": {"question": {}},
        "parameters": {"p": param("Reply in JSON.", "output format")},
        "nodes": [
            llm("extract", "{p}", "{question}"),
            {"id": "parsed", "op": "parse_json", "source": "extract"},
            {"id": "price", "op": "get", "source": "parsed", "path": "price"},
            {"id": "report", "op": "template", "text": "Price: {price}"},
        ],
        "outputs": {"report": "report"},
    }
    task = ScriptedLLM(lambda request: '{"price": 3}')
    critic = ScriptedLLM(tagging_critic)
    resources = scripted_manager({"task": task, "critic": critic})
    record = await forward(load_graph(graph), {"question": "q"}, resources)

    result = await Feedback(0.0, LOSS_TEXT, record, example=0).backward()

    assert [item.node for item in result.nodes["price"]] == ["report"]
    assert [item.node for item in result.nodes["parsed"]] == ["price"]
    assert [item.node for item in result.nodes["extract"]] == ["parsed"]
    assert all(
        item.text == LOSS_TEXT
        for node in ("report", "price", "parsed")
        for item in result.nodes[node]
    )
    (request,) = critic.calls
    assert items_of(request) == [LOSS_TEXT]
    assert [item.node for item in result.parameters["p"]] == ["extract"]


async def test_classify_and_tool_nodes_pass_feedback_through() -> None:
    graph = {
        "name": "label_then_tool",
        "inputs": {"question": {}},
        "parameters": {"p": param("Be clear.", "style")},
        "nodes": [
            llm("say", "{p}", "{question}"),
            {
                "id": "kind",
                "op": "classify",
                "source": "say",
                "labels": {"yes": "yes"},
                "default": "no",
            },
            {"id": "shout", "op": "tool", "name": "upper", "args": {"text": "{kind}"}},
        ],
        "outputs": {"shouted": "shout"},
    }
    task = ScriptedLLM(lambda request: "yes")
    critic = ScriptedLLM(tagging_critic)
    resources = scripted_manager({"task": task, "critic": critic})
    record = await run(
        load_graph(graph), {"question": "q"}, resources=resources, record=True,
        tools={"upper": lambda text: text.upper()},
    )  # fmt: skip

    result = await Feedback(0.0, LOSS_TEXT, record).backward()

    assert [item.node for item in result.nodes["kind"]] == ["shout"]
    assert [item.node for item in result.nodes["say"]] == ["kind"]
    assert [item.node for item in result.parameters["p"]] == ["say"]


async def test_critic_sees_the_rendered_messages_and_the_output() -> None:
    _, critic, resources = clients()
    record = await forward(load_graph(LINEAR), {"question": "6*7?"}, resources)

    await Feedback(0.0, LOSS_TEXT, record).backward()

    (request,) = critic_calls(critic.calls, "draft")
    assert "<SYSTEM>\nDraft.\n</SYSTEM>" in request.prompt
    assert "<PROMPT>\n6*7?\n</PROMPT>" in request.prompt
    assert f"<OUTPUT>\n{record.nodes['draft'].output}\n</OUTPUT>" in request.prompt
    assert "<VALUE>\nDraft.\n</VALUE>" in request.prompt
    assert "<DESCRIPTION>how to draft</DESCRIPTION>" in request.prompt


async def test_diamond_calls_the_shared_critic_once_with_both_consumers_feedback() -> None:
    _, critic, resources = clients()
    record = await forward(load_graph(DIAMOND), {"question": "q"}, resources)

    result = await Feedback(0.2, LOSS_TEXT, record, example="ex-1").backward()

    (shared_call,) = critic_calls(critic.calls, "shared")
    heard = items_of(shared_call)
    assert len(heard) == 2
    assert heard[0].startswith("[left->shared]")
    assert heard[1].startswith("[right->shared]")
    assert sorted(item.node for item in result.nodes["shared"]) == ["left", "right"]
    (on_ps,) = result.parameters["ps"]
    assert "[left->shared]" in on_ps.text
    assert "[right->shared]" in on_ps.text
    assert {name: len(items) for name, items in result.parameters.items()} == {
        "pf": 1, "pl": 1, "pr": 1, "ps": 1,
    }  # fmt: skip
    assert len(critic.calls) == result.calls == 4


class Twice(InferenceModule):
    """One LLMInference (one parameter) called at two sites of forward()."""

    def __init__(self) -> None:
        super().__init__()
        self.style = Parameter("Be exact.", description="how to answer")
        self.step = LLMInference("task", system_prompt=self.style)

    def forward(self, question: str) -> Any:
        first = self.step(question)
        return self.step(f"Check this: {first}")


async def test_a_parameter_used_at_two_call_sites_gets_items_from_both() -> None:
    _, critic, resources = clients()
    module = Twice()
    record = await forward(module, "6*7?", resources)
    sites = [node.id for node in record.graph.nodes if node.op == "llm"]
    assert len(sites) == 2
    (name,) = record.graph.parameters

    loss = VerifierLoss(verifier("answer_equals"))
    result = await (await loss(record, "42", example=3)).backward(critic="critic")

    assert sorted(item.node for item in result.parameters[name]) == sorted(sites)
    assert module.style.feedback == result.parameters[name]
    assert {item.example for item in module.style.feedback} == {3}
    assert all(item.target == name for item in module.style.feedback)
    assert len(critic.calls) == 2


async def test_the_critic_sees_the_value_the_forward_pass_used() -> None:
    _, critic, resources = clients()
    module = Twice()
    record = await forward(module, "q", resources)
    module.style.value = "Be exact and brief."  # say an optimizer stepped since

    await Feedback(0.0, LOSS_TEXT, record).backward()

    assert all("<VALUE>\nBe exact.\n</VALUE>" in request.prompt for request in critic.calls)


async def test_backward_passes_of_a_batch_tag_each_item_with_its_example() -> None:
    _, critic, resources = clients()
    module = Twice()
    records = [await forward(module, f"q{i}", resources) for i in range(3)]

    results = await asyncio.gather(
        *(
            Feedback(0.0, LOSS_TEXT, record, example=i).backward()
            for i, record in enumerate(records)
        )
    )

    assert sorted(item.example for item in module.style.feedback) == [0, 0, 1, 1, 2, 2]
    assert all(len(result.parameters["style"]) == 2 for result in results)
    assert len(critic.calls) == 6


class Instructed(InferenceModule):
    """The parameter sits inside an f-string prompt (a template node when traced)."""

    def __init__(self) -> None:
        super().__init__()
        self.instructions = Parameter("Think step by step.", description="how to reason")
        self.answer = LLMInference("task")

    def forward(self, question: str) -> Any:
        return self.answer(f"{self.instructions}\n\nQuestion: {question}")


async def test_a_parameter_inside_an_f_string_prompt_is_a_critic_target() -> None:
    _, critic, resources = clients()
    module = Instructed()
    record = await forward(module, "6*7?", resources)
    assert [node.op for node in record.graph.nodes] == ["template", "llm"]
    (name,) = record.graph.parameters

    await Feedback(0.0, LOSS_TEXT, record, example=1).backward()

    (request,) = critic.calls
    assert targets_of(request) == [name]
    assert "<DESCRIPTION>how to reason</DESCRIPTION>" in request.prompt
    (item,) = module.instructions.feedback
    assert (item.node, item.text) == ("answer", f"[answer->{name}] heard: {LOSS_TEXT}")


class Routed(InferenceModule):
    """Math questions and others go to different models, joined by match_branch."""

    def __init__(self) -> None:
        super().__init__()
        self.math = LLMInference("task", system_prompt=Parameter("Compute.", "math rules"))
        self.chat = LLMInference("task", system_prompt=Parameter("Chat.", "chat rules"))

    def forward(self, question: str) -> Any:
        kind = classify(question, {"math": r"\d"}, default="other")
        return match_branch(
            kind, {"math": lambda: self.math(question)}, lambda: self.chat(question)
        )


@pytest.mark.parametrize(
    ("question", "taken", "skipped"), [("6*7?", "math", "chat"), ("hi", "chat", "math")]
)
async def test_after_a_branch_only_the_taken_arm_gets_feedback(
    question: str, taken: str, skipped: str
) -> None:
    _, critic, resources = clients()
    module = Routed()
    record = await forward(module, question, resources)

    result = await Feedback(0.0, LOSS_TEXT, record).backward()

    taken_param, skipped_param = getattr(module, taken), getattr(module, skipped)
    assert len(taken_param.system_prompt.feedback) == 1
    assert skipped_param.system_prompt.feedback == []
    assert [node_of(request) for request in critic.calls] == [taken]
    assert skipped not in result.nodes
    assert not any(node.startswith("classify") for node in result.nodes)


async def test_coalesce_sends_feedback_only_to_the_source_it_took() -> None:
    graph = {
        "name": "first_of",
        "inputs": {"question": {}},
        "parameters": {"pa": param("A.", "first way"), "pb": param("B.", "second way")},
        "nodes": [
            llm("a", "{pa}", "{question}"),
            llm("b", "{pb}", "{question}"),
            {"id": "either", "op": "coalesce", "sources": ["a", "b"]},
        ],
        "outputs": {"answer": "either"},
    }
    _, critic, resources = clients()
    record = await forward(load_graph(graph), {"question": "q"}, resources)
    assert record.nodes["b"].output is not None  # both ran; the join took the first

    result = await Feedback(0.0, LOSS_TEXT, record).backward()

    assert set(result.parameters) == {"pa"}
    assert [node_of(request) for request in critic.calls] == ["a"]


async def test_unparseable_critic_replies_are_retried_then_counted() -> None:
    _, critic, resources = clients(lambda request: "I think it is fine.")
    record = await forward(load_graph(LINEAR), {"question": "q"}, resources)

    result = await Feedback(0.0, LOSS_TEXT, record).backward()

    assert len(critic.calls) == 3  # only the final node's critic: nothing went upstream
    assert RETRY_NOTE.format(attempt=2) in critic.calls[1].prompt
    assert RETRY_NOTE.format(attempt=3) in critic.calls[2].prompt
    assert (result.calls, result.unparsed, result.parameters) == (3, 1, {})


async def test_a_reply_parsed_on_retry_is_used() -> None:
    def late(request: LLMRequest) -> str:
        return tagging_critic(request) if "<RETRY" in request.prompt else "hmm"

    _, _critic, resources = clients(late)
    record = await forward(load_graph(LINEAR), {"question": "q"}, resources)

    result = await Feedback(0.0, LOSS_TEXT, record).backward()

    assert set(result.parameters) == {"p1", "p2"}
    assert (result.calls, result.unparsed) == (4, 0)


async def test_a_failed_critic_call_is_reported_not_raised() -> None:
    _, _critic, resources = clients(lambda request: PermanentLLMError("model gone"))
    record = await forward(load_graph(LINEAR), {"question": "q"}, resources)

    result = await Feedback(0.0, LOSS_TEXT, record).backward(resources=resources)

    assert result.parameters == {}
    assert len(result.errors) == 1
    assert "model gone" in result.errors[0]
    assert "'final'" in result.errors[0]


async def test_inputs_and_frozen_parameters_are_not_targets() -> None:
    graph = {
        "name": "frozen",
        "inputs": {"question": {}},
        "parameters": {
            "fixed": param("Be safe.", "policy", trainable=False),
            "style": param("Be brief.", "style"),
        },
        "nodes": [llm("answer", "{fixed} {style}", "{question}")],
        "outputs": {"answer": "answer"},
    }
    _, critic, resources = clients()
    record = await forward(load_graph(graph), {"question": "q"}, resources)

    result = await Feedback(0.0, LOSS_TEXT, record).backward()

    assert [targets_of(request) for request in critic.calls] == [["style"]]
    assert set(result.parameters) == {"style"}


async def test_a_none_critique_stops_the_feedback_there() -> None:
    def content(request: LLMRequest) -> str:
        return (
            '<CRITIQUE target="p2">Say the unit.</CRITIQUE><CRITIQUE target="wrap">NONE</CRITIQUE>'
        )

    _, critic, resources = clients(content)
    record = await forward(load_graph(LINEAR), {"question": "q"}, resources)

    result = await Feedback(0.0, LOSS_TEXT, record).backward()

    assert [item.text for item in result.parameters["p2"]] == ["Say the unit."]
    assert set(result.parameters) == {"p2"}
    assert "wrap" not in result.nodes
    assert len(critic.calls) == 1


async def test_feedback_without_a_record_cannot_go_backward() -> None:
    with pytest.raises(ConfigError, match="no forward record"):
        await Feedback(0.0, LOSS_TEXT, None).backward()
