"""What nodes reference, in which order they can run, and where cycles are."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from app.engine.graph.model import (
    ClassifyNode,
    CoalesceNode,
    GetNode,
    Graph,
    LLMNode,
    Node,
    ParseJsonNode,
    TemplateNode,
    ToolNode,
)
from app.engine.graph.refs import Ref, Template, parse_ref, parse_template


@dataclass(frozen=True, slots=True)
class FieldRef:
    """A reference found in a node field (``field`` uses dotted names, e.g. ``args.text``)."""

    field: str
    ref: Ref


def template_fields(node: Node) -> Iterator[tuple[str, str]]:
    """(field, text) for every template-valued field of a node."""
    if isinstance(node, LLMNode):
        yield "system", node.system
        yield "prompt", node.prompt
    elif isinstance(node, TemplateNode):
        yield "text", node.text
    elif isinstance(node, ToolNode):
        for arg, text in node.args.items():
            yield f"args.{arg}", text


def reference_fields(node: Node) -> Iterator[tuple[str, str]]:
    """(field, reference text) for every plain-reference field of a node."""
    if isinstance(node, ParseJsonNode | GetNode | ClassifyNode):
        yield "source", node.source
    elif isinstance(node, CoalesceNode):
        for index, source in enumerate(node.sources):
            yield f"sources[{index}]", source
    if node.when is not None:
        yield "when.ref", node.when.ref


def node_refs(node: Node) -> list[FieldRef]:
    """Every reference a node makes, parsed (raises ``RefSyntaxError`` on bad syntax)."""
    found = [
        FieldRef(field, ref)
        for field, text in template_fields(node)
        for ref in parse_template(text).refs
    ]
    found += [FieldRef(field, parse_ref(text)) for field, text in reference_fields(node)]
    return found


def node_templates(node: Node) -> dict[str, Template]:
    return {field: parse_template(text) for field, text in template_fields(node)}


def dependencies(graph: Graph) -> dict[str, list[str]]:
    """For each node, the distinct node ids it reads (inputs and parameters excluded)."""
    ids = set(graph.node_ids)
    deps: dict[str, list[str]] = {}
    for node in graph.nodes:
        names = dict.fromkeys(r.ref.name for r in node_refs(node) if r.ref.name in ids)
        deps[node.id] = list(names)
    return deps


def find_cycle(deps: Mapping[str, list[str]]) -> list[str] | None:
    """A cycle as a path ``[a, b, ..., a]`` if there is one, else ``None``."""
    state: dict[str, int] = {}  # 1 = on the stack, 2 = finished
    for start in deps:
        if state.get(start) is None and (cycle := _walk(start, deps, state)):
            return cycle
    return None


def _walk(start: str, deps: Mapping[str, list[str]], state: dict[str, int]) -> list[str] | None:
    stack: list[tuple[str, Iterator[str]]] = [(start, iter(deps.get(start, ())))]
    state[start] = 1
    while stack:
        node, children = stack[-1]
        child = next(children, None)
        if child is None:
            state[node] = 2
            stack.pop()
        elif state.get(child) == 1:
            path = [name for name, _ in stack]
            return [*path[path.index(child) :], child]
        elif state.get(child) is None:
            state[child] = 1
            stack.append((child, iter(deps.get(child, ()))))
    return None


def topological_order(deps: Mapping[str, list[str]]) -> list[str]:
    """Node ids, dependencies first, ties kept in declaration order (Kahn's algorithm)."""
    remaining = {node: len(d) for node, d in deps.items()}
    users: dict[str, list[str]] = {node: [] for node in deps}
    for node, needs in deps.items():
        for dep in needs:
            users[dep].append(node)
    order = [node for node, count in remaining.items() if count == 0]
    for node in order:
        for user in users[node]:
            remaining[user] -= 1
            if remaining[user] == 0:
                order.append(user)
    if len(order) != len(deps):
        raise ValueError("graph has a cycle")
    return order


def descendants(deps: Mapping[str, list[str]], node: str) -> set[str]:
    """Every node that (transitively) reads ``node``."""
    users: dict[str, list[str]] = {n: [] for n in deps}
    for n, needs in deps.items():
        for dep in needs:
            users[dep].append(n)
    seen: set[str] = set()
    frontier = [node]
    while frontier:
        for user in users[frontier.pop()]:
            if user not in seen:
                seen.add(user)
                frontier.append(user)
    return seen
