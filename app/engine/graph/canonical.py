"""Canonical JSON and content hash of a graph, and its DOT rendering.

The canonical form sorts object keys and nodes (by id), drops fields left at their
defaults, and uses compact separators, so equal graphs hash equally however they were
written.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from app.engine.graph.analysis import node_refs
from app.engine.graph.model import Graph, LLMNode
from app.engine.graph.refs import parse_ref


def to_data(graph: Graph) -> dict[str, Any]:
    """The graph as JSON-ready data, in declaration order, defaults omitted."""
    data = graph.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    data["nodes"] = [{"id": n["id"], "op": n["op"], **n} for n in data.get("nodes", [])]
    return data


def canonical_json(graph: Graph) -> str:
    """Deterministic JSON text: the input of :func:`graph_hash`."""
    data = to_data(graph)
    data["nodes"] = sorted(data.get("nodes", []), key=lambda node: node["id"])
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def graph_hash(graph: Graph) -> str:
    """SHA-256 (hex) of the canonical JSON."""
    return hashlib.sha256(canonical_json(graph).encode("utf-8")).hexdigest()


def to_dot(graph: Graph) -> str:
    """Graphviz DOT: inputs as ellipses, parameters as notes, nodes as boxes."""
    lines = [f"digraph {json.dumps(graph.name)} {{", "  rankdir=LR;"]
    lines += [
        f'  {json.dumps(name)} [shape=ellipse, label="input: {name}"];' for name in graph.inputs
    ]
    lines += [
        f'  {json.dumps(name)} [shape=note, label="param: {name}"];' for name in graph.parameters
    ]
    for node in graph.nodes:
        detail = f"\\n{node.alias}" if isinstance(node, LLMNode) else ""
        lines.append(
            f'  {json.dumps(node.id)} [shape=box, label="{node.id}\\n[{node.op}]{detail}"];'
        )
        for edge in dict.fromkeys((r.ref.name, r.field) for r in node_refs(node)):
            style = ", style=dashed" if edge[1] == "when.ref" else ""
            lines.append(
                f'  {json.dumps(edge[0])} -> {json.dumps(node.id)} [label="{edge[1]}"{style}];'
            )
    for name, text in graph.outputs.items():
        lines.append(f'  {json.dumps("out:" + name)} [shape=doublecircle, label="{name}"];')
        lines.append(f"  {json.dumps(parse_ref(text).name)} -> {json.dumps('out:' + name)};")
    lines.append("}")
    return "\n".join(lines)
