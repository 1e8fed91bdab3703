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
from app.engine.graph.model import Graph, Node
from app.engine.graph.refs import parse_ref
from app.engine.ops.table import op_of


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
    """Graphviz DOT: inputs as ellipses, parameters as notes, nodes as boxes.

    Every identifier and label is a quoted DOT string, so no name can add statements.
    """
    lines = [f"digraph {dot_quote(graph.name)} {{", "  rankdir=LR;"]
    lines += [f"  {_vertex(name, 'ellipse', 'input: ' + name)};" for name in graph.inputs]
    lines += [f"  {_vertex(name, 'note', 'param: ' + name)};" for name in graph.parameters]
    for node in graph.nodes:
        lines += _node_lines(node)
    for name, text in graph.outputs.items():
        lines.append(f"  {_vertex('out:' + name, 'doublecircle', name)};")
        lines.append(f"  {dot_quote(parse_ref(text).name)} -> {dot_quote('out:' + name)};")
    lines.append("}")
    return "\n".join(lines)


def _node_lines(node: Node) -> list[str]:
    detail = op_of(node).detail(node)
    lines = [f"  {_vertex(node.id, 'box', node.id, f'[{node.op}]', *detail)};"]
    for name, field in dict.fromkeys((r.ref.name, r.field) for r in node_refs(node)):
        style = ", style=dashed" if field == "when.ref" else ""
        edge = f"{dot_quote(name)} -> {dot_quote(node.id)}"
        lines.append(f"  {edge} [label={dot_quote(field)}{style}];")
    return lines


def _vertex(name: str, shape: str, *label: str) -> str:
    return f"{dot_quote(name)} [shape={shape}, label={dot_label(*label)}]"


def dot_quote(text: str) -> str:
    """``text`` as a DOT quoted string: backslashes and quotes escaped, line breaks as ``\\n``."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + escaped.replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\n") + '"'


def dot_label(*lines: str) -> str:
    """A quoted DOT label of several lines."""
    return dot_quote("\n".join(lines))
