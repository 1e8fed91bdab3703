"""The graph IR: validation that names node and field, canonical form and hash, DOT."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from app.engine import GraphValidationError, canonical_json, graph_hash, load_graph, to_data, to_dot

EXAMPLE: dict[str, Any] = {
    "name": "extract-and-compare",
    "inputs": {"doc1": {"type": "string"}, "doc2": {"type": "string"}},
    "parameters": {
        "style": {
            "value": "Highlight key similarities and differences.",
            "description": "How the comparison is written",
            "trainable": True,
        }
    },
    "nodes": [
        {
            "id": "facts1",
            "op": "llm",
            "alias": "fast",
            "system": "Extract facts.",
            "prompt": "{doc1}",
        },
        {
            "id": "facts2",
            "op": "llm",
            "alias": "fast",
            "system": "Extract facts.",
            "prompt": "{doc2}",
        },
        {
            "id": "compare",
            "op": "llm",
            "alias": "smart",
            "system": "{style}",
            "prompt": "Compare:\n{facts1}\n\nvs:\n{facts2}",
            "max_tokens": 400,
        },
    ],
    "outputs": {"comparison": "compare"},
}


def with_nodes(*nodes: dict[str, Any], outputs: dict[str, str] | None = None) -> dict[str, Any]:
    data = {
        "name": "g",
        "inputs": {"x": {}},
        "nodes": list(nodes),
        "outputs": outputs or {"out": "x"},
    }
    return data


def issues_of(data: Any, **kwargs: Any) -> list[tuple[str | None, str, str]]:
    with pytest.raises(GraphValidationError) as caught:
        load_graph(data, **kwargs)
    return [(i.node, i.field, i.message) for i in caught.value.issues]


def test_design_example_loads_and_round_trips() -> None:
    graph = load_graph(EXAMPLE)
    again = load_graph(json.loads(json.dumps(to_data(graph))))
    assert canonical_json(again) == canonical_json(graph)
    assert graph_hash(again) == graph_hash(graph)
    assert len(graph_hash(graph)) == 64


def test_hash_ignores_node_order_key_order_and_defaults() -> None:
    shuffled = copy.deepcopy(EXAMPLE)
    shuffled["nodes"].reverse()
    shuffled["parameters"]["style"]["trainable"] = True  # default spelled out
    shuffled["nodes"][0] = dict(reversed(list(shuffled["nodes"][0].items())))
    assert graph_hash(load_graph(shuffled)) == graph_hash(load_graph(EXAMPLE))


def test_hash_changes_with_content() -> None:
    changed = copy.deepcopy(EXAMPLE)
    changed["parameters"]["style"]["value"] = "Other."
    assert graph_hash(load_graph(changed)) != graph_hash(load_graph(EXAMPLE))


def test_json_text_is_accepted() -> None:
    assert load_graph(json.dumps(EXAMPLE)).name == "extract-and-compare"


def test_cycle_is_reported_with_its_path() -> None:
    data = with_nodes(
        {"id": "a", "op": "template", "text": "{c} {x}"},
        {"id": "b", "op": "template", "text": "{a}"},
        {"id": "c", "op": "template", "text": "{b}"},
    )
    [(node, field, message)] = issues_of(data)
    assert (node, field) == ("a", "text")
    assert message == "cycle: a -> c -> b -> a"


def test_self_reference_is_a_cycle() -> None:
    assert (
        issues_of(with_nodes({"id": "a", "op": "template", "text": "{a}"}))[0][2] == "cycle: a -> a"
    )


@pytest.mark.parametrize(
    ("node", "expected"),
    [
        ({"id": "n", "op": "template", "text": "{nope}"}, ("n", "text", "unknown name 'nope'")),
        ({"id": "n", "op": "get", "source": "x", "path": "a..b"}, ("n", "path", "bad path")),
        ({"id": "n", "op": "template", "text": "{ x"}, ("n", "text", "unclosed '{'")),
        ({"id": "n", "op": "template", "text": "a } b"}, ("n", "text", "single '}'")),
        (
            {"id": "n", "op": "template", "text": '{"k": 1}'},
            ("n", "text", "must start with a name"),
        ),
        (
            {"id": "n", "op": "classify", "source": "x", "labels": {"a": "("}, "default": "d"},
            ("n", "labels.a", "invalid regular expression"),
        ),
        (
            {"id": "n", "op": "llm", "alias": "fast", "prompt": "{x}", "temperature": 9},
            ("n", "temperature", "less than or equal to 2"),
        ),
        ({"id": "n", "op": "llm", "prompt": "{x}"}, ("n", "alias", "Field required")),
        (
            {"id": "n", "op": "shout", "text": "{x}"},
            ("n", "op", "does not match any of the expected tags"),
        ),
        ({"id": "n", "op": "template", "text": 5}, ("n", "text", "valid string")),
        ({"id": "n-1", "op": "template", "text": "x"}, ("n-1", "id", "should match pattern")),
        (
            {"id": "n", "op": "template", "text": "x", "colour": "red"},
            ("n", "colour", "Extra inputs"),
        ),
        (
            {"id": "n", "op": "coalesce", "sources": ["x"], "when": {"ref": "x"}},
            ("n", "when", "exactly one of"),
        ),
        (
            {"id": "n", "op": "template", "text": "x", "when": {"ref": "zz", "equals": 1}},
            ("n", "when.ref", "unknown name 'zz'"),
        ),
    ],
)
def test_node_errors_name_node_and_field(
    node: dict[str, Any], expected: tuple[str, str, str]
) -> None:
    found = issues_of(with_nodes(node))
    assert any(n == expected[0] and f == expected[1] and expected[2] in m for n, f, m in found), (
        found
    )


def test_duplicate_ids_and_name_clashes() -> None:
    data = with_nodes(
        {"id": "a", "op": "template", "text": "1"}, {"id": "a", "op": "template", "text": "2"}
    )
    assert ("a", "id", "duplicate node id 'a'") in issues_of(data)
    clash = with_nodes({"id": "x", "op": "template", "text": "1"})
    assert ("x", "id", "'x' is already an input or parameter name") in issues_of(clash)


def test_unknown_alias_when_aliases_are_known() -> None:
    data = with_nodes({"id": "n", "op": "llm", "alias": "huge", "prompt": "{x}"})
    [(node, field, message)] = issues_of(data, aliases={"fast"})
    assert (node, field) == ("n", "alias")
    assert "unknown endpoint alias 'huge' (known: fast)" in message
    assert load_graph(data).node("n").op == "llm"  # without a configuration it is accepted


def test_outputs_must_exist() -> None:
    assert issues_of(with_nodes(outputs={"o": "ghost"})) == [
        (None, "outputs.o", "unknown name 'ghost'")
    ]


def test_parameter_references_have_no_fields() -> None:
    data = with_nodes({"id": "n", "op": "template", "text": "{p.x}"})
    data["parameters"] = {"p": {"value": "v"}}
    assert issues_of(data) == [("n", "text", "parameter 'p' is text; it has no fields")]


def test_non_object_and_bad_json() -> None:
    assert issues_of("[1, 2]")[0][2] == "a graph must be a JSON object"
    assert "not valid JSON" in issues_of("{nope")[0][2]
    assert "not valid JSON" in issues_of(b"\xff\xfe")[0][2]


def test_node_limit() -> None:
    nodes = [{"id": f"n{i}", "op": "template", "text": "{x}"} for i in range(5)]
    assert "exceed the limit of 4" in issues_of(with_nodes(*nodes), max_nodes=4)[0][2]


def test_dot_has_every_edge() -> None:
    dot = to_dot(load_graph(EXAMPLE))
    for edge in [
        '"doc1" -> "facts1"',
        '"facts1" -> "compare"',
        '"facts2" -> "compare"',
        '"style" -> "compare"',
    ]:
        assert edge in dot
    assert dot.startswith('digraph "extract-and-compare"')


def dot_skeleton(dot: str) -> list[str]:
    """DOT statements with every quoted string (per DOT's lexer: only \\" escapes) as Q."""
    out, pos = [], 0
    while pos < len(dot):
        if dot[pos] == '"':
            pos += 1
            while dot[pos] != '"':
                pos += 2 if dot[pos] == "\\" else 1
            out.append("Q")
        else:
            out.append(dot[pos])
        pos += 1
    return [part.strip() for part in "".join(out).split(";") if part.strip()]


def test_dot_quotes_every_name_so_none_can_add_statements() -> None:
    evil = 'y"]; pwned [shape=box]; z [label="\\'
    data = {
        "name": 'g"; x -> y; "',
        "inputs": {"x": {}},
        "nodes": [
            {"id": "l", "op": "llm", "alias": 'a"];b["', "prompt": "{x}"},
            {"id": "k", "op": "tool", "name": "f", "args": {'a"];e["': "{l}"}},
        ],
        "outputs": {evil: "l", "ok": "k"},
    }
    assert dot_skeleton(to_dot(load_graph(data))) == [
        "digraph Q {\n  rankdir=LR",
        "Q [shape=ellipse, label=Q]",
        "Q [shape=box, label=Q]",
        "Q -> Q [label=Q]",
        "Q [shape=box, label=Q]",
        "Q -> Q [label=Q]",
        "Q [shape=doublecircle, label=Q]",
        "Q -> Q",
        "Q [shape=doublecircle, label=Q]",
        "Q -> Q",
        "}",
    ]
