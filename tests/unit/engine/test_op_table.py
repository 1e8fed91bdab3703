"""The op table covers exactly the ops of the graph schema, and drives analysis and DOT."""

from __future__ import annotations

import typing
from typing import Any

import pytest

from app.engine import GraphValidationError, classify, load_graph, run, to_dot
from app.engine.graph.analysis import template_fields
from app.engine.graph.model import Node
from app.engine.ops.table import LEGAL_OPS, OPS


def test_every_schema_op_has_one_table_entry_keyed_by_its_tag() -> None:
    union = typing.get_args(typing.get_args(Node)[0])
    tags = {model.model_fields["op"].annotation.__args__[0]: model for model in union}
    assert tags == {name: spec.model for name, spec in OPS.items()}
    assert set(LEGAL_OPS) == set(tags)


def test_an_unknown_op_is_refused_naming_the_op_field() -> None:
    data = {"name": "g", "nodes": [{"id": "n", "op": "shell"}], "outputs": {"y": "n"}}
    with pytest.raises(GraphValidationError, match="node 'n', field 'op'"):
        load_graph(data)


def test_table_fields_give_templates_and_dot_details() -> None:
    graph = load_graph(
        {
            "name": "g",
            "inputs": {"x": {}},
            "nodes": [
                {"id": "ask", "op": "llm", "alias": "fast", "system": "S {x}", "prompt": "{x}"},
                {"id": "t", "op": "tool", "name": "count", "args": {"text": "{ask}"}},
            ],
            "outputs": {"y": "t"},
        }
    )
    assert list(template_fields(graph.node("t"))) == [("args.text", "{ask}")]
    assert list(template_fields(graph.node("ask"))) == [("system", "S {x}"), ("prompt", "{x}")]
    assert '"ask" [shape=box, label="ask\\n[llm]\\nfast"]' in to_dot(graph)


@pytest.mark.parametrize(("value", "label"), [(None, "empty"), (True, "yes"), ({"a": 1}, "json")])
async def test_eager_classify_sees_a_value_as_the_node_does(value: Any, label: str) -> None:
    labels = {"empty": "^$", "yes": "^true$", "json": r'^\{"a": 1\}$'}
    graph = load_graph(
        {
            "name": "g",
            "inputs": {"x": {"type": "any"}},
            "nodes": [
                {"id": "k", "op": "classify", "source": "x", "labels": labels, "default": "no"}
            ],
            "outputs": {"k": "k"},
        }
    )
    assert await run(graph, {"x": value}) == {"k": label}
    assert classify(value, labels, default="no") == label
