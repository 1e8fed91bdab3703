"""Estimated sizes of the model calls an optimization run makes on one graph: every ``llm``
node's forward call, its critic call, a judge call and each parameter's optimizer call.

Tokens are ``ceil(chars / 4)`` of the text a call sends: the node's system and prompt with
parameters filled in (their values), graph inputs (the mean JSON length of an item's input,
shared among the graph's inputs) and upstream outputs (their estimated length), and for the
optimizer's roles the prompt contract's own text (``prompts.py``, built with stand-in text of
the estimated lengths). Outputs are a node's ``max_tokens``, else :data:`DEFAULT_OUTPUT_TOKENS`.

>>> from app.engine import Graph
>>> graph = Graph.model_validate({"name": "g", "inputs": {"q": {}}, "nodes": [
...     {"id": "a", "op": "llm", "alias": "m", "prompt": "{q}?", "max_tokens": 10}],
...     "outputs": {"y": "a"}})
>>> CallSizes(graph, input_chars=7).task["a"]
Tokens(input=2, output=10)
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from app.engine.graph.analysis import dependencies, parse_node, topological_order
from app.engine.graph.model import Graph, LLMNode, Node
from app.engine.graph.refs import Template, parse_ref, parse_template
from app.engine.optimization.prompts import (
    CRITIC_SYSTEM,
    JUDGE_SYSTEM,
    OPTIMIZER_SYSTEM,
    Target,
    critic_request,
    judge_request,
    optimizer_request,
)
from app.engine.records import FeedbackItem

CHARS_PER_TOKEN = 4
DEFAULT_OUTPUT_TOKENS = 256  # an llm node without max_tokens
CRITIC_OUTPUT_TOKENS = 300  # one critique per target, a few sentences each
JUDGE_OUTPUT_TOKENS = 150  # a score and a short critique
FEEDBACK_CHARS = 400  # one piece of feedback: a verifier's sentence, a judge's or critic's critique
OPTIMIZER_EXTRA_TOKENS = 100  # a rewritten value: the old length plus a sentence or two


@dataclass(frozen=True, slots=True)
class Tokens:
    """Input and output tokens of one call."""

    input: int
    output: int


def tokens_of(chars: float) -> int:
    return math.ceil(chars / CHARS_PER_TOKEN)


def mean_input_chars(inputs: Iterable[Any]) -> int:
    """The mean length of items' inputs as JSON (what a call sending them sends), rounded up.

    >>> mean_input_chars([{"q": "ab"}, {"q": "abcd"}])
    12
    """
    lengths = [len(json.dumps(value, ensure_ascii=False, sort_keys=True)) for value in inputs]
    return math.ceil(sum(lengths) / len(lengths)) if lengths else 0


class CallSizes:
    """Per-call token estimates for ``graph`` with items of ``input_chars`` characters."""

    def __init__(self, graph: Graph, input_chars: int = 0) -> None:
        self.graph = graph
        self.llm_nodes = [node for node in graph.nodes if isinstance(node, LLMNode)]
        self._chars = _value_chars(graph, input_chars)
        self.input_chars = input_chars
        self.task = {node.id: self._task(node) for node in self.llm_nodes}
        self.critic = {node.id: self._critic(node) for node in self.llm_nodes}

    @property
    def forward(self) -> Tokens:
        """All ``llm`` calls of one forward pass of one item."""
        return _sum(self.task.values())

    @property
    def backward(self) -> Tokens:
        """All critic calls of one item's backward pass (one per ``llm`` node)."""
        return _sum(self.critic.values())

    def judge(self, rubric: str) -> Tokens:
        """One judge call grading one item's outputs by ``rubric``."""
        output = "x" * sum(self._chars[parse_ref(ref).name] for ref in self.graph.outputs.values())
        request = judge_request(rubric, "x" * self.input_chars, output)
        return Tokens(tokens_of(len(JUDGE_SYSTEM) + len(request)), JUDGE_OUTPUT_TOKENS)

    def optimizer(self, name: str, batch: int, conservatism: float = 0.5) -> Tokens:
        """One optimizer call rewriting parameter ``name`` from a batch's feedback (one item
        per example and call site)."""
        param = self.graph.parameters[name]
        sites = [node.id for node in self.llm_nodes if name in parse_node(node).names] or [name]
        feedback = [
            FeedbackItem("x" * FEEDBACK_CHARS, name, site, example=example)
            for example in range(batch)
            for site in sites
        ]
        request = optimizer_request(name, param.description, param.value, feedback, conservatism)
        output = tokens_of(len(param.value)) + OPTIMIZER_EXTRA_TOKENS
        return Tokens(tokens_of(len(OPTIMIZER_SYSTEM) + len(request)), output)

    def _task(self, node: LLMNode) -> Tokens:
        sent = self._rendered(node.system) + self._rendered(node.prompt)
        return Tokens(tokens_of(sent), _output_tokens(node))

    def _critic(self, node: LLMNode) -> Tokens:
        consumers = _consumers(self.graph, node.id)
        request = critic_request(
            node.id,
            "x" * self._rendered(node.system),
            "x" * self._rendered(node.prompt),
            "x" * self._chars[node.id],
            ["x" * FEEDBACK_CHARS] * consumers,
            self._targets(node),
        )
        return Tokens(tokens_of(len(CRITIC_SYSTEM) + len(request)), CRITIC_OUTPUT_TOKENS)

    def _targets(self, node: LLMNode) -> list[Target]:
        targets = []
        node_ids = set(self.graph.node_ids)
        for name in parse_node(node).names:
            param = self.graph.parameters.get(name)
            if param is not None and param.trainable:
                targets.append(Target(name, "parameter", param.description, param.value))
            elif name in node_ids:
                text = f"the output of node {name}, inserted into this step's prompt"
                targets.append(Target(name, "input", text))
        return targets

    def _rendered(self, text: str | None) -> int:
        return _template_chars(parse_template(text or ""), self._chars)


def _value_chars(graph: Graph, input_chars: int) -> dict[str, int]:
    """Estimated characters of every name a template may reference."""
    share = math.ceil(input_chars / max(1, len(graph.inputs)))
    chars = {name: share for name in graph.inputs}
    chars.update((name, len(param.value)) for name, param in graph.parameters.items())
    for node_id in topological_order(dependencies(graph)):
        chars[node_id] = _node_chars(graph.node(node_id), chars)
    return chars


def _node_chars(node: Node, chars: dict[str, int]) -> int:
    if isinstance(node, LLMNode):
        return _output_tokens(node) * CHARS_PER_TOKEN
    parsed = parse_node(node)
    if "text" in parsed.templates:  # a template node: its text with the references filled in
        return _template_chars(parsed.templates["text"], chars)
    return sum(chars.get(name, 0) for name in parsed.names)


def _template_chars(template: Template, chars: dict[str, int]) -> int:
    return sum(len(p) if isinstance(p, str) else chars.get(p.name, 0) for p in template.pieces)


def _output_tokens(node: LLMNode) -> int:
    return node.max_tokens or DEFAULT_OUTPUT_TOKENS


def _consumers(graph: Graph, node_id: str) -> int:
    """How many feedback texts reach a node: one per reading node and per graph output."""
    readers = sum(node_id in needs for needs in dependencies(graph).values())
    outputs = sum(parse_ref(ref).name == node_id for ref in graph.outputs.values())
    return max(1, readers + outputs)


def _sum(calls: Iterable[Tokens]) -> Tokens:
    found = list(calls)
    return Tokens(sum(t.input for t in found), sum(t.output for t in found))
