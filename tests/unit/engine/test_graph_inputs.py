"""``graph_inputs``: a graph's declared inputs, read without compiling the graph."""

from __future__ import annotations

from typing import Any

import pytest

from app.engine import GraphValidationError, load_graph
from app.engine.graph import graph_inputs

DATA: dict[str, Any] = {
    "name": "g",
    "inputs": {"doc": {"type": "string"}, "count": {"type": "integer", "description": "n"}},
    "nodes": [{"id": "t", "op": "template", "text": "{doc} x{count}"}],
    "outputs": {"y": "t"},
}


def test_graph_and_its_data_declare_the_same_inputs() -> None:
    assert graph_inputs(DATA) == graph_inputs(load_graph(DATA)) == load_graph(DATA).inputs


def test_the_nodes_are_not_compiled() -> None:
    cyclic = {**DATA, "nodes": [{"id": "t", "op": "template", "text": "{t}"}]}
    assert list(graph_inputs(cyclic)) == ["doc", "count"]


def test_bad_inputs_are_a_validation_error_naming_the_field() -> None:
    with pytest.raises(GraphValidationError, match="field 'inputs'"):
        graph_inputs({**DATA, "inputs": {"doc": {"type": "text"}}})
