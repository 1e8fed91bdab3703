"""Python that a graph cannot express raises ``TraceError`` saying what to write instead."""

from __future__ import annotations

from typing import Any

import pytest

from app.engine import InferenceModule, LLMInference, Parameter, TraceError, trace


class Body(InferenceModule):
    def __init__(self, body: Any) -> None:
        super().__init__()
        self.llm = LLMInference("fast")
        self.body = body

    def forward(self, a: str, b: str) -> Any:
        return self.body(self, a, b)


def test_joining_traced_values_says_how_to_write_it() -> None:
    with pytest.raises(TraceError, match=r"join.*f\"\{v\}\" for v in"):
        trace(Body(lambda self, a, b: self.llm("\n".join([a, b]))))


def test_the_advised_join_traces_to_one_template() -> None:
    graph = trace(Body(lambda self, a, b: self.llm("\n".join(f"{v}" for v in [a, b]))))
    template, llm = graph.nodes
    assert (template.op, template.text) == ("template", "{a}\n{b}")
    assert llm.prompt == "{" + template.id + "}"


@pytest.mark.parametrize(
    "body",
    [
        lambda self, a, b: self.llm(a * 2),
        lambda self, a, b: self.llm(2 * a),
        lambda self, a, b: self.llm(a - b),
        lambda self, a, b: self.llm(a / 2),
    ],
)
def test_arithmetic_on_a_traced_value_is_a_trace_error(body: Any) -> None:
    with pytest.raises(TraceError, match="arithmetic"):
        trace(Body(body))


@pytest.mark.parametrize(
    "body",
    [
        lambda self, a, b: self.llm(f"Q: {a!r}"),
        lambda self, a, b: self.llm(f"Q: {a!a}"),
        lambda self, a, b: self.llm("Q: " + repr(a)),
        lambda self, a, b: self.llm(f"Q: {[a, b]}"),
    ],
)
def test_repr_of_a_traced_value_is_refused_not_traced_as_plain_text(body: Any) -> None:
    with pytest.raises(TraceError, match=r"repr\(\).*write \{value\}"):
        trace(Body(body))


def test_a_type_error_unrelated_to_tracing_is_left_alone() -> None:
    with pytest.raises(TypeError, match="unsupported operand"):
        trace(Body(lambda self, a, b: self.llm(str(1 + "x"))))  # type: ignore[operator]


class Styled(InferenceModule):
    def __init__(self, body: Any) -> None:
        super().__init__()
        self.llm = LLMInference("fast")
        self.style = Parameter("Be brief.", description="tone")
        self.body = body

    def forward(self, a: str) -> Any:
        return self.body(self, a)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (lambda self, a: self.llm(f"{self.style!r} {a}"), r"repr\(\)"),
        (lambda self, a: self.llm("\n".join([self.style, a])), "str.join"),
    ],
)
def test_a_parameter_is_refused_the_same_way(body: Any, message: str) -> None:
    """Else ``!r`` would freeze the parameter's current text into the graph as a literal."""
    with pytest.raises(TraceError, match=message):
        trace(Styled(body))


def test_indexing_by_a_traced_value_names_it_readably() -> None:
    with pytest.raises(TraceError, match=r"not the traced value b$"):
        trace(Body(lambda self, a, b: self.llm(a[b])))
