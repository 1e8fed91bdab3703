"""What nodes reference, in which order they can run, and where cycles are."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from app.engine.graph.messages import message_texts
from app.engine.graph.model import Graph, Node
from app.engine.graph.refs import Ref, Template, parse_ref, parse_template
from app.engine.ops.table import op_of


@dataclass(frozen=True, slots=True)
class FieldRef:
    """A reference found in a node field (``field`` uses dotted names, e.g. ``args.text``)."""

    field: str
    ref: Ref


def template_fields(node: Node) -> Iterator[tuple[str, str]]:
    """(field, text) for every template-valued field of a node."""
    for name in op_of(node).templates:
        yield from _texts(name, getattr(node, name))


def reference_fields(node: Node) -> Iterator[tuple[str, str]]:
    """(field, reference text) for every plain-reference field of a node."""
    for name in op_of(node).references:
        yield from _texts(name, getattr(node, name))
    if node.when is not None:
        yield "when.ref", node.when.ref


def _texts(name: str, value: Any) -> Iterator[tuple[str, str]]:
    if value is None:
        return
    if name == "messages":
        yield from message_texts(value)
    elif isinstance(value, str):
        yield name, value
    elif isinstance(value, list):
        for index, text in enumerate(value):
            yield f"{name}[{index}]", text
    else:
        for key, text in value.items():
            yield f"{name}.{key}", text


@dataclass(frozen=True, slots=True)
class ParsedNode:
    """A node's templates and references, parsed once (both by field name)."""

    templates: dict[str, Template]
    references: dict[str, Ref]

    @property
    def refs(self) -> list[FieldRef]:
        """Every reference, the templates' first, in field order."""
        found = [FieldRef(field, ref) for field, t in self.templates.items() for ref in t.refs]
        return found + [FieldRef(field, ref) for field, ref in self.references.items()]

    @property
    def names(self) -> dict[str, None]:
        """The distinct names referenced, in order (a dict used as an ordered set)."""
        names = {ref.name: None for t in self.templates.values() for ref in t.refs}
        names.update((ref.name, None) for ref in self.references.values())
        return names


def parse_node(node: Node) -> ParsedNode:
    """Parse every template and reference of a node (``RefSyntaxError`` on bad syntax)."""
    templates = {field: parse_template(text) for field, text in template_fields(node)}
    return ParsedNode(templates, {field: parse_ref(text) for field, text in reference_fields(node)})


def node_refs(node: Node) -> list[FieldRef]:
    """Every reference a node makes, parsed (raises ``RefSyntaxError`` on bad syntax)."""
    return parse_node(node).refs


def node_templates(node: Node) -> dict[str, Template]:
    return parse_node(node).templates


def dependencies(
    graph: Graph, parsed: Mapping[str, ParsedNode] | None = None
) -> dict[str, list[str]]:
    """For each node, the distinct node ids it reads (inputs and parameters excluded).

    ``parsed`` gives nodes already parsed, by id (others are parsed here)."""
    ids = set(graph.node_ids)
    deps: dict[str, list[str]] = {}
    for node in graph.nodes:
        names = (parsed[node.id] if parsed is not None else parse_node(node)).names
        deps[node.id] = [name for name in names if name in ids]
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
