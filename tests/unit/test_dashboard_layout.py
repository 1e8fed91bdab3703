"""The dashboard's layered layout and graph SVG: layers by longest path, barycentre order,
no overlapping boxes at 50 nodes, one element per node, every text escaped."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from app.dashboard.graph_svg import graph_svg, state_of
from app.dashboard.layout import NODE_H, NODE_W, layers, layout, ordered


def crossings(columns: list[list[str]], deps: dict[str, list[str]]) -> int:
    rank = {node: (layer, row) for layer, col in enumerate(columns) for row, node in enumerate(col)}
    edges = [
        (rank[d], rank[n]) for n, ds in deps.items() for d in ds if rank[n][0] == rank[d][0] + 1
    ]
    return sum(
        1
        for i, (a1, b1) in enumerate(edges)
        for a2, b2 in edges[i + 1 :]
        if a1[0] == a2[0] and (a1[1] - a2[1]) * (b1[1] - b2[1]) < 0
    )


def test_a_nodes_layer_is_its_longest_path_from_a_source() -> None:
    deps = {"a": [], "b": ["a"], "c": ["b"], "d": ["a", "c"]}
    assert layers(list(deps), deps) == {"a": 0, "b": 1, "c": 2, "d": 3}


def test_barycentre_sweeps_untangle_crossed_pairs() -> None:
    # x2 feeds y1 and x1 feeds y2: in declaration order the two edges cross.
    deps = {"x1": [], "x2": [], "y1": ["x2"], "y2": ["x1"]}
    order = list(deps)
    assert crossings([["x1", "x2"], ["y1", "y2"]], deps) == 1
    assert crossings(ordered(order, deps, layers(order, deps)), deps) == 0


def fifty_nodes() -> dict[str, list[str]]:
    """Five parallel chains of ten nodes, each reading the one before and its neighbour."""
    deps: dict[str, list[str]] = {}
    for step in range(10):
        for lane in range(5):
            reads = [f"n{step - 1}_{lane}", f"n{step - 1}_{(lane + 1) % 5}"] if step else []
            deps[f"n{step}_{lane}"] = reads
    return deps


def test_fifty_nodes_get_boxes_that_never_overlap_and_edges_that_go_forward() -> None:
    deps = fifty_nodes()
    placed = layout(list(deps), deps)
    boxes = [(p.x, p.y) for p in placed.nodes]
    assert len(set(boxes)) == 50
    for i, (x1, y1) in enumerate(boxes):
        for x2, y2 in boxes[i + 1 :]:
            assert abs(x1 - x2) >= NODE_W or abs(y1 - y2) >= NODE_H
    assert all(placed.at(a).layer < placed.at(b).layer for a, b in placed.edges)
    assert (placed.width, placed.height) <= (10 * (NODE_W + 56) + 24, 5 * (NODE_H + 20) + 24)


def graph(nodes: list[dict[str, Any]]) -> dict[str, Any]:
    return {"name": "g<&>", "inputs": {"t": {"type": "string"}}, "nodes": nodes,
            "outputs": {"o": nodes[-1]["id"]}}  # fmt: skip


def test_the_svg_has_one_group_per_node_with_its_counts() -> None:
    nodes = [{"id": f"n{i}", "op": "template", "text": "{t}" if i == 0 else f"{{n{i - 1}}}"}
             for i in range(50)]  # fmt: skip
    counts = {"n3": {"succeeded": 4, "failed": 1}}
    svg = ET.fromstring(graph_svg(graph(nodes), counts))
    groups = [g for g in svg.iter("{http://www.w3.org/2000/svg}g") if "node" in g.get("class", "")]
    assert len(groups) == 50
    n3 = next(g for g in groups if g.get("data-node") == "n3")
    assert (n3.get("data-succeeded"), n3.get("data-failed"), n3.get("data-state")) == (
        "4", "1", "failed",
    )  # fmt: skip
    assert svg.find("{http://www.w3.org/2000/svg}title").text == "Graph g<&>: 50 nodes"


def test_a_node_is_skipped_only_when_all_its_results_were() -> None:
    assert state_of({"skipped": 3}) == "skipped"
    assert state_of({"skipped": 3, "succeeded": 1}) == "succeeded"
    assert state_of({}) == "pending"
