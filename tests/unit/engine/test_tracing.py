"""Tracing: every way Python code uses a traced value becomes the right nodes and edges."""

from __future__ import annotations

from typing import Any

import pytest

from app.engine import (
    InferenceModule,
    LLMInference,
    Parameter,
    TraceError,
    branch,
    classify,
    graph_hash,
    match_branch,
    parse_json,
    to_data,
    trace,
)
from app.engine.graph import dependencies


class Extract(InferenceModule):
    def __init__(self) -> None:
        super().__init__()
        self.llm = LLMInference(
            "fast", system_prompt='Answer as JSON: {"facts": [..]}', response_format="json"
        )

    def forward(self, doc: str) -> Any:
        return self.llm("Document:\n" + doc)


class Analyzer(InferenceModule):
    """f-string, +, str(), a nested module called twice, indexing into parse_json, a branch."""

    def __init__(self) -> None:
        super().__init__()
        self.extract = Extract()
        self.style = Parameter("Be terse.", description="comparison style")
        self.compare = LLMInference("smart", system_prompt=self.style)
        self.judge = LLMInference("fast", system_prompt="Reply with JSON.")
        self.detail = LLMInference("smart")
        self.brief = LLMInference("fast")

    def forward(self, doc1: str, doc2: str) -> Any:
        facts1, facts2 = self.extract(doc1), self.extract(doc2)
        verdict = parse_json(self.judge(str(facts1)))
        comparison = self.compare(
            f"Compare {facts1} with {facts2}; focus: " + str(verdict["focus"][0])
        )
        answer = branch(
            verdict["detailed"],
            lambda: self.detail(f"Expand: {comparison}"),
            lambda: self.brief(comparison),
        )
        return {"comparison": comparison, "answer": answer}


def nodes_by_id(module: InferenceModule) -> dict[str, dict[str, Any]]:
    return {node["id"]: node for node in to_data(trace(module))["nodes"]}


def test_pipeline_traces_to_exactly_the_expected_nodes_and_edges() -> None:
    graph = trace(Analyzer())
    assert dependencies(graph) == {
        "extract_template": [],
        "extract_llm": ["extract_template"],
        "extract_template_2": [],
        "extract_llm_2": ["extract_template_2"],
        "judge": ["extract_llm"],
        "parse_json": ["judge"],
        "get": ["parse_json"],
        "get_2": ["get"],
        "template": ["extract_llm", "extract_llm_2", "get_2"],
        "compare": ["template"],
        "get_3": ["parse_json"],
        "template_2": ["compare", "get_3"],
        "detail": ["template_2", "get_3"],
        "brief": ["compare", "get_3"],
        "coalesce": ["detail", "brief"],
    }
    nodes = {node.id: node for node in graph.nodes}
    assert nodes["template"].text == "Compare {extract_llm} with {extract_llm_2}; focus: {get_2}"
    assert nodes["extract_template"].text == "Document:\n{doc1}"
    assert nodes["judge"].prompt == "{extract_llm}"  # str(value) is the value itself
    assert (nodes["get"].path, nodes["get_2"].path, nodes["get_3"].path) == (
        "focus",
        "[0]",
        "detailed",
    )
    assert nodes["compare"].system == "{style}"
    assert (
        nodes["extract_llm"].system == 'Answer as JSON: {{"facts": [..]}}'
    )  # literal braces escaped
    assert nodes["extract_llm"].module == "extract.llm"
    assert graph.outputs == {"comparison": "compare", "answer": "coalesce"}
    assert graph.parameters["style"].value == "Be terse."


def test_branch_arms_carry_guards() -> None:
    nodes = nodes_by_id(Analyzer())
    assert nodes["detail"]["when"] == {"ref": "get_3", "equals": True}
    assert nodes["template_2"]["when"] == {"ref": "get_3", "equals": True}
    assert nodes["brief"]["when"] == {"ref": "get_3", "equals": False}
    assert "when" not in nodes["coalesce"]


def test_graph_holds_no_input_values() -> None:
    text = str(to_data(trace(Analyzer(), "first secret document", "second secret document")))
    assert "secret" not in text


def test_tracing_is_deterministic() -> None:
    assert graph_hash(trace(Analyzer())) == graph_hash(trace(Analyzer()))


class Echo(InferenceModule):
    def __init__(self, body: Any) -> None:
        super().__init__()
        self.llm = LLMInference("fast")
        self.body = body

    def forward(self, text: str) -> Any:
        return self.body(self, text)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (lambda self, t: self.llm(t) if t else None, "use branch"),
        (lambda self, t: [self.llm(x) for x in t], "cannot iterate"),
        (lambda self, t: self.llm(str(len(t))), "len()"),
        (lambda self, t: self.llm(t.upper()), "'.upper' on traced value"),
        (lambda self, t: self.llm(f"{t:>10}"), "format spec"),
        (lambda self, t: self.llm(str(t)[2:] + "x"), "changed by a string method"),
        (lambda self, t: self.llm(t + 3), "only text joins"),
        (lambda self, t: self.llm("x" if t == "a" else "y"), "comparing"),
        (lambda self, t: self.llm(t[1.5]), "str key or int position"),
        (lambda self, t: None, "returned None"),
        (lambda self, t: self.llm(t, t), "exactly one prompt"),
    ],
)
def test_unsupported_uses_raise_trace_error(body: Any, message: str) -> None:
    with pytest.raises(TraceError, match=message):
        trace(Echo(body))


def test_async_forward_is_refused() -> None:
    class Async(InferenceModule):
        async def forward(self, text: str) -> Any:
            return text

    with pytest.raises(TraceError, match="plain def"):
        trace(Async())


def test_percent_format_and_str_format_become_templates() -> None:
    class Formats(InferenceModule):
        def __init__(self) -> None:
            super().__init__()
            self.llm = LLMInference("fast")

        def forward(self, a: str, b: str) -> Any:
            return (
                self.llm("%s and %s" % (a, b)),  # noqa: UP031 - the point of the test
                self.llm("{} then {}".format(b, a)),  # noqa: UP032 - the point of the test
            )

    graph = trace(Formats())
    texts = [node.text for node in graph.nodes if node.op == "template"]
    assert texts == ["{a} and {b}", "{b} then {a}"]
    assert list(graph.outputs) == ["output_0", "output_1"]


def test_same_text_twice_reuses_one_template_node() -> None:
    class Twice(InferenceModule):
        def __init__(self) -> None:
            super().__init__()
            self.first = LLMInference("fast")
            self.second = LLMInference("smart")

        def forward(self, q: str) -> Any:
            prompt = f"Question: {q}"
            return self.first(prompt), self.second(prompt)

    graph = trace(Twice())
    assert [n.id for n in graph.nodes] == ["template", "first", "second"]


def test_parameter_in_forward_becomes_a_graph_parameter() -> None:
    class Instructed(InferenceModule):
        def __init__(self) -> None:
            super().__init__()
            self.rules = Parameter("Cite sources.", description="answering rules")
            self.llm = LLMInference("fast")

        def forward(self, q: str) -> Any:
            return self.llm(f"{self.rules}\n\n{q}")

    graph = trace(Instructed())
    assert graph.parameters["rules"].path == "rules"
    assert graph.node("template").text == "{rules}\n\n{q}"


def test_match_branch_with_default_and_nesting() -> None:
    class Router(InferenceModule):
        def __init__(self) -> None:
            super().__init__()
            self.answer = LLMInference("fast")
            self.refuse = LLMInference("fast")
            self.other = LLMInference("smart")
            self.check = LLMInference("fast", response_format="json")

        def forward(self, q: str) -> Any:
            kind = classify(q, {"question": r"\?$", "command": r"^(do|make)\b"}, default="chat")

            def question() -> Any:
                safe = self.check(q)
                return branch(safe["ok"], lambda: self.answer(q), lambda: self.refuse(q))

            return match_branch(kind, {"question": question}, default=lambda: self.other(q))

    nodes = nodes_by_id(Router())
    assert nodes["classify"]["labels"] == {"question": r"\?$", "command": r"^(do|make)\b"}
    assert nodes["check"]["when"] == {"ref": "classify", "equals": "question"}
    assert nodes["other"]["when"] == {"ref": "classify", "not_in": ["question"]}
    # the inner condition is gated by the outer arm, so a skipped outer arm skips the inner one
    assert nodes["coalesce"] == {
        "id": "coalesce",
        "op": "coalesce",
        "when": {"ref": "classify", "equals": "question"},
        "sources": ["get"],
    }
    assert nodes["answer"]["when"] == {"ref": "coalesce", "equals": True}
    assert nodes["refuse"]["when"] == {"ref": "coalesce", "equals": False}
    assert nodes["coalesce_2"]["sources"] == ["answer", "refuse"]
    assert nodes["coalesce_2"]["when"] == {"ref": "classify", "equals": "question"}
    assert nodes["coalesce_3"] == {
        "id": "coalesce_3",
        "op": "coalesce",
        "sources": ["coalesce_2", "other"],
    }


def test_input_names_can_be_given() -> None:
    graph = trace(LLMInference("fast"), "question")
    assert list(graph.inputs) == ["question"]
    assert graph.node("llm").prompt == "{question}"


def test_annotations_become_input_types() -> None:
    class Typed(InferenceModule):
        def __init__(self) -> None:
            super().__init__()
            self.llm = LLMInference("fast")

        def forward(self, text: str, data: dict, count: int, anything) -> Any:  # type: ignore[no-untyped-def]
            return self.llm(f"{text} {data['k']} {count} {anything}")

    inputs = {name: spec.type for name, spec in trace(Typed()).inputs.items()}
    assert inputs == {"text": "string", "data": "object", "count": "integer", "anything": "any"}


def test_eager_ops_compute_directly() -> None:
    assert parse_json('{"a": [1]}') == {"a": [1]}
    assert classify("make tea", {"cmd": r"^make"}, default="x") == "cmd"
    assert branch(False, lambda: 1, lambda: 2) == 2
    assert match_branch("z", {"a": lambda: 1}, default=lambda: 3) == 3
