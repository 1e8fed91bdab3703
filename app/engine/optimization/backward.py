"""The textual backward pass: a loss's feedback walked back through a recorded forward pass.

The loss text is the feedback of the graph's output nodes. Nodes are visited consumers
first, so a node has every consumer's feedback (fan-out) before its own step runs, and
nodes on the same level run concurrently. Only nodes that SUCCEEDED take part.

- ``llm``: ONE critic call (role BACKWARD) with all the feedback the node received; its
  targets are the trainable parameters and upstream nodes its system and prompt reference
  (graph inputs are data, not targets), seen through ``template`` nodes: a traced f-string
  prompt is a template node, and its critic must see the parameter (with its description
  and value) and the nodes inside it, not one opaque "template" input. Each critique
  becomes a :class:`FeedbackItem`.
- ``template``, ``get``, ``parse_json``, ``classify``, ``tool``: the feedback passes unchanged
  to every node and trainable parameter they reference (no call).
- ``coalesce``: only to the source that was taken.

Every item names its ``target``, the ``node`` whose step wrote it (``"loss"`` for the
loss's own text), the ``example`` and its loss ``score``; items for a module's parameter
are also appended to ``Parameter.feedback``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from app.engine.errors import ExecutionError
from app.engine.graph.analysis import ParsedNode, dependencies, parse_node, topological_order
from app.engine.graph.model import Graph, Node
from app.engine.graph.refs import parse_ref
from app.engine.optimization.calls import Resources, ask_parsed
from app.engine.optimization.prompts import CRITIC_SYSTEM, Target, critic_request, parse_critiques
from app.engine.optimization.roles import Role
from app.engine.records import FeedbackItem, ForwardRecord, NodeStatus

LOSS = "loss"  # the FeedbackItem.node of the loss's own text at the graph's outputs
_GUARD = "when.ref"  # a guard decides whether a node runs; it is not content the node used

T = TypeVar("T")


@dataclass(slots=True)
class BackwardResult:
    """What one backward pass produced: feedback by graph parameter and by node, the critic
    requests made, the replies that never parsed, and the critic calls that failed (why)."""

    parameters: dict[str, list[FeedbackItem]] = field(default_factory=dict)
    nodes: dict[str, list[FeedbackItem]] = field(default_factory=dict)
    calls: int = 0
    unparsed: int = 0
    errors: list[str] = field(default_factory=list)


async def backward_pass(
    record: ForwardRecord,
    text: str,
    *,
    example: int | str | None = None,
    score: float | None = None,
    critic: str = "critic",
    resources: Resources = None,
) -> BackwardResult:
    """Walk ``text`` (a loss's feedback) backward through ``record``; see the module doc."""
    walk = _Walk(record, critic, resources or record.resources, example, score)
    walk.deliver([walk.item(text, target, LOSS) for target in walk.output_targets()])
    for level in walk.levels():
        for sent in await _all([walk.step(node) for node in level]):
            walk.deliver(sent)
    return walk.result


class _Walk:
    def __init__(
        self, record: ForwardRecord, critic: str, resources: Resources,
        example: int | str | None, score: float | None,
    ) -> None:  # fmt: skip
        self.record = record
        self.graph: Graph = record.graph
        self.parsed = {node.id: parse_node(node) for node in self.graph.nodes}
        self.critic = critic
        self.resources = resources
        self.example = example
        self.score = score
        self.inbox: dict[str, list[FeedbackItem]] = {}
        self.result = BackwardResult()

    def item(self, text: str, target: str, node: str) -> FeedbackItem:
        return FeedbackItem(text, target=target, node=node, example=self.example, score=self.score)

    def output_targets(self) -> list[str]:
        names = (parse_ref(ref).name for ref in self.graph.outputs.values())
        return [name for name in dict.fromkeys(names) if self.is_target(name)]

    def is_target(self, name: str) -> bool:
        """A trainable parameter, or a node that succeeded (graph inputs are data)."""
        spec = self.graph.parameters.get(name)
        if spec is not None:
            return spec.trainable
        node = self.record.nodes.get(name)
        return node is not None and node.status is NodeStatus.SUCCEEDED

    def levels(self) -> list[list[str]]:
        """Node ids grouped by distance from the outputs: a node's consumers come first."""
        deps = dependencies(self.graph, self.parsed)
        users: dict[str, list[str]] = {node: [] for node in deps}
        for node, needs in deps.items():
            for dep in needs:
                users[dep].append(node)
        depth: dict[str, int] = {}
        for node in reversed(topological_order(deps)):
            depth[node] = 1 + max((depth[user] for user in users[node]), default=-1)
        grouped: dict[int, list[str]] = {}
        for node in self.graph.node_ids:
            grouped.setdefault(depth[node], []).append(node)
        return [grouped[level] for level in sorted(grouped)]

    def deliver(self, items: Sequence[FeedbackItem]) -> None:
        for item in items:
            if item.target not in self.graph.parameters:
                self.inbox.setdefault(item.target, []).append(item)
                continue
            self.result.parameters.setdefault(item.target, []).append(item)
            param = self.record.parameters.get(item.target)
            if param is not None:
                param.feedback.append(item)

    async def step(self, node_id: str) -> list[FeedbackItem]:
        """The feedback this node sends upstream."""
        received = self.inbox.get(node_id)
        record = self.record.nodes.get(node_id)
        if not received or record is None or record.status is not NodeStatus.SUCCEEDED:
            return []
        self.result.nodes[node_id] = list(received)
        texts = list(dict.fromkeys(item.text for item in received))
        node = self.graph.node(node_id)
        if node.op == "llm":
            return await self.criticise(node, texts)
        targets = self.taken(node_id) if node.op == "coalesce" else self.content_refs(node_id)
        return [self.item(text, target, node_id) for target in targets for text in texts]

    def content_refs(self, node_id: str) -> list[str]:
        """The targets whose values this node's content used (its guard excluded)."""
        parsed: ParsedNode = self.parsed[node_id]
        names = [ref.name for t in parsed.templates.values() for ref in t.refs]
        names += [ref.name for fld, ref in parsed.references.items() if fld != _GUARD]
        return [name for name in dict.fromkeys(names) if self.is_target(name)]

    def taken(self, node_id: str) -> list[str]:
        """The coalesce source whose value was used: the first one that succeeded."""
        for fld, ref in self.parsed[node_id].references.items():
            source = self.record.nodes.get(ref.name)
            if fld == _GUARD or (source is not None and source.status is not NodeStatus.SUCCEEDED):
                continue
            return [ref.name] if self.is_target(ref.name) else []
        return []

    def critic_targets(self, node_id: str) -> list[str]:
        """What an llm node's critic is asked about: its content's targets, seen through the
        template nodes that assembled its text (a parameter in an f-string is a target)."""
        found: list[str] = []
        for name in self.content_refs(node_id):
            is_template = name in self.parsed and self.graph.node(name).op == "template"
            found += self.critic_targets(name) if is_template else [name]
        return list(dict.fromkeys(found))

    async def criticise(self, node: Node, texts: list[str]) -> list[FeedbackItem]:
        names = self.critic_targets(node.id)
        if not names:
            return []
        request = self.critic_request(node, texts, [self.target(name) for name in names])
        try:
            critiques, reply = await ask_parsed(
                self.critic, CRITIC_SYSTEM, request, lambda text: parse_critiques(text, names),
                role=Role.BACKWARD, resources=self.resources,
            )  # fmt: skip
        except ExecutionError as exc:
            self.result.calls += 1
            self.result.errors.append(f"critic of node {node.id!r}: {exc}")
            return []
        self.result.calls += reply.attempts
        if critiques is None:
            self.result.unparsed += 1
            return []
        return [self.item(critiques[name], name, node.id) for name in names if name in critiques]

    def critic_request(self, node: Node, texts: list[str], targets: list[Target]) -> str:
        record = self.record.nodes[node.id]
        seen: dict[str, Any] = record.inputs or {}
        system = str(seen.get("system", getattr(node, "system", "")))
        prompt = str(seen.get("prompt", getattr(node, "prompt", None) or ""))
        return critic_request(node.id, system, prompt, record.output, texts, targets)

    def target(self, name: str) -> Target:
        spec = self.graph.parameters.get(name)
        if spec is None:
            description = f"the output of node {name}, inserted into this step's prompt"
            return Target(name, "input", description)
        return Target(name, "parameter", spec.description, spec.value)


async def _all(work: list[Awaitable[T]]) -> list[T]:
    """Every result in order; on the first error the others are cancelled and it is raised."""
    tasks = [asyncio.ensure_future(item) for item in work]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
