"""``Graph.node()`` answers from an index that never goes stale and never changes equality."""

from __future__ import annotations

import pytest

from app.engine import Graph, load_graph


def chain(count: int) -> Graph:
    nodes = [{"id": "n0", "op": "template", "text": "{x}"}]
    nodes += [{"id": f"n{i}", "op": "template", "text": f"{{n{i - 1}}}"} for i in range(1, count)]
    return load_graph(
        {"name": "g", "inputs": {"x": {}}, "nodes": nodes, "outputs": {"y": f"n{count - 1}"}}
    )


def test_node_finds_every_node_and_raises_for_unknown_ids() -> None:
    graph = chain(50)
    assert [graph.node(f"n{i}").id for i in range(50)] == graph.node_ids
    with pytest.raises(KeyError):
        graph.node("nope")


def test_a_looked_up_graph_still_equals_and_dumps_like_a_fresh_one() -> None:
    looked_up, fresh = chain(5), chain(5)
    looked_up.node("n3")
    assert looked_up == fresh
    assert looked_up.model_dump() == fresh.model_dump()


def test_a_copy_with_other_nodes_answers_from_its_own_nodes() -> None:
    graph = chain(5)
    graph.node("n4")
    reordered = graph.model_copy(update={"nodes": list(reversed(graph.nodes[1:]))})
    assert reordered.node("n1") is graph.node("n1")
    with pytest.raises(KeyError):
        reordered.node("n0")
    assert graph.node("n0").id == "n0"
