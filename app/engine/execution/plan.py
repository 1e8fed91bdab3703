"""Compile a graph once into steps the scheduler can run fast, item after item."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from app.engine.errors import NodeError
from app.engine.execution.step import Step
from app.engine.execution.values import Values, lookup
from app.engine.graph.analysis import (
    ParsedNode,
    dependencies,
    parse_node,
    topological_order,
)
from app.engine.graph.canonical import graph_hash
from app.engine.graph.model import Graph, Node
from app.engine.graph.refs import Ref, parse_ref
from app.engine.ops.table import op_of


class Plan:
    """A graph ready to execute: steps in topological order, outputs and parameter values."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.hash = graph_hash(graph)
        parsed = {node.id: parse_node(node) for node in graph.nodes}
        deps = dependencies(graph, parsed)
        order = topological_order(deps)
        self.index = {node_id: i for i, node_id in enumerate(order)}
        self.steps = [
            self._compile(i, graph.node(node_id), parsed[node_id], deps[node_id])
            for i, node_id in enumerate(order)
        ]
        users: list[list[int]] = [[] for _ in self.steps]
        for step in self.steps:
            for dep in step.deps:
                users[dep].append(step.index)
        for step, used_by in zip(self.steps, users, strict=True):
            step.users = tuple(used_by)
        _rank_twins(self.steps)
        self.roots = [step.index for step in self.steps if not step.deps]
        self.outputs = {name: parse_ref(text) for name, text in graph.outputs.items()}
        self.parameters = {name: spec.value for name, spec in graph.parameters.items()}
        self.aliases = {s.llm.alias for s in self.steps if s.llm is not None}

    def _compile(self, index: int, node: Node, parsed: ParsedNode, deps: list[str]) -> Step:
        step = Step(
            index,
            node,
            tuple(self.index[d] for d in deps),
            node.when,
            parsed.references.get("when.ref"),
            node.priority or 0,
            reads=_reads(parsed),
        )
        op_of(node).compile(step, node, parsed)
        return step


_NOT_THE_CALL = {"id", "module", "priority", "timeout_s", "max_retries"}


def _rank_twins(steps: list[Step]) -> None:
    """Number the llm nodes that make the same call (equal but for id and scheduling), in
    plan order: deliberate samples of one request, kept apart in the ledger."""
    seen: dict[str, int] = {}
    for step in steps:
        if step.llm is None:
            continue
        call = step.node.model_dump(mode="json", exclude=_NOT_THE_CALL)
        signature = json.dumps(call, sort_keys=True)
        rank = seen.get(signature, 0)
        seen[signature] = rank + 1
        if rank:
            step.llm = replace(step.llm, twin=rank)


def _reads(parsed: ParsedNode) -> tuple[tuple[str, Ref], ...]:
    """Each distinct reference of a node by its text, parsed once for every item's record."""
    found: dict[str, Ref] = {}
    for field_ref in parsed.refs:
        found.setdefault(str(field_ref.ref), field_ref.ref)
    return tuple(found.items())


def record_inputs(step: Step, values: Values) -> dict[str, Any]:
    """The values a node read, by reference text (for ``record=True``)."""
    seen: dict[str, Any] = {}
    for text, ref in step.reads:
        if ref.name in values:
            try:
                seen[text] = lookup(values, ref)
            except NodeError:
                seen[text] = None
    return seen
