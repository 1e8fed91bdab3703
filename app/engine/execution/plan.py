"""Compile a graph once into steps the scheduler can run fast, item after item."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from app.engine.errors import GraphIssue, GraphValidationError, NodeError
from app.engine.execution.limits import OutputLimits, check_rendered
from app.engine.graph.analysis import dependencies, node_refs, node_templates, topological_order
from app.engine.graph.canonical import graph_hash
from app.engine.graph.model import (
    ClassifyNode,
    CoalesceNode,
    GetNode,
    Graph,
    Guard,
    LLMNode,
    Node,
    ParseJsonNode,
    TemplateNode,
    ToolNode,
)
from app.engine.graph.patterns import Classifier, LabelPatternError
from app.engine.graph.refs import Ref, Template, parse_path, parse_ref, resolve_path, to_text
from app.engine.llm import LLMRequest

Values = Mapping[str, Any]
Inline = Callable[[Values, OutputLimits], Any]


def lookup(values: Values, ref: Ref) -> Any:
    """The value a reference points at (``NodeError`` if its path does not resolve)."""
    value = values[ref.name]
    if not ref.path:
        return value
    try:
        return resolve_path(value, ref.path)
    except LookupError as exc:
        raise NodeError(f"{ref}: {exc}") from None


def render(
    template: Template, values: Values, limits: OutputLimits | None = None, subject: str = ""
) -> str:
    """Fill a template from the values computed so far.

    With ``limits``, an oversized result is refused before it is built (``subject`` names
    it in the error), so a template bomb never allocates its string.
    """
    parts = [
        piece if isinstance(piece, str) else to_text(lookup(values, piece))
        for piece in template.pieces
    ]
    if limits is not None:
        check_rendered(subject, parts, limits)
    return "".join(parts)


@dataclass(frozen=True, slots=True)
class LLMStep:
    """Static part of a model call; ``request()`` adds the rendered text."""

    alias: str
    system: Template
    prompt: Template
    temperature: float | None
    max_tokens: int | None
    stop: tuple[str, ...] | None
    seed: int | None
    response_format: str | dict[str, Any]
    timeout_s: float | None
    max_retries: int | None

    def request(
        self, model: str, values: Values, limits: OutputLimits | None = None, node: str = ""
    ) -> LLMRequest:
        return LLMRequest(
            model=model,
            system=render(self.system, values, limits, f"system of node {node!r}"),
            prompt=render(self.prompt, values, limits, f"prompt of node {node!r}"),
            temperature=self.temperature,
            max_tokens=self.max_tokens,
            stop=self.stop,
            seed=self.seed,
            response_format=self.response_format,
        )

    @property
    def wants_json(self) -> bool:
        return self.response_format != "text"


@dataclass(slots=True)
class Step:
    """One node, compiled: its neighbours by index and how to compute it."""

    index: int
    node: Node
    deps: tuple[int, ...]
    guard: Guard | None
    guard_ref: Ref | None
    priority: int
    inline: Inline | None = None
    llm: LLMStep | None = None
    tool: str | None = None
    tool_args: tuple[tuple[str, Template], ...] = ()
    coalesce: tuple[Ref, ...] = ()
    classify: tuple[Ref, Classifier] | None = None
    users: tuple[int, ...] = ()

    @property
    def id(self) -> str:
        return self.node.id


class Plan:
    """A graph ready to execute: steps in topological order, outputs and parameter values."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.hash = graph_hash(graph)
        deps = dependencies(graph)
        order = topological_order(deps)
        self.index = {node_id: i for i, node_id in enumerate(order)}
        self.steps = [
            self._compile(i, graph.node(node_id), deps[node_id]) for i, node_id in enumerate(order)
        ]
        users: list[list[int]] = [[] for _ in self.steps]
        for step in self.steps:
            for dep in step.deps:
                users[dep].append(step.index)
        for step, used_by in zip(self.steps, users, strict=True):
            step.users = tuple(used_by)
        self.roots = [step.index for step in self.steps if not step.deps]
        self.outputs = {name: parse_ref(text) for name, text in graph.outputs.items()}
        self.parameters = {name: spec.value for name, spec in graph.parameters.items()}
        self.aliases = {s.llm.alias for s in self.steps if s.llm is not None}

    def _compile(self, index: int, node: Node, deps: list[str]) -> Step:
        guard_ref = parse_ref(node.when.ref) if node.when else None
        step = Step(
            index,
            node,
            tuple(self.index[d] for d in deps),
            node.when,
            guard_ref,
            node.priority or 0,
        )
        _attach_handler(step, node)
        return step


def _attach_handler(step: Step, node: Node) -> None:
    if isinstance(node, LLMNode):
        step.llm = _llm_step(node)
    elif isinstance(node, CoalesceNode):
        step.coalesce = tuple(parse_ref(source) for source in node.sources)
    elif isinstance(node, ToolNode):
        step.tool = node.name
        templates = node_templates(node).items()
        step.tool_args = tuple((field.removeprefix("args."), t) for field, t in templates)
    elif isinstance(node, ClassifyNode):
        step.classify = (parse_ref(node.source), _classifier(node))
    else:
        step.inline = _inline_handler(node)


def _llm_step(node: LLMNode) -> LLMStep:
    templates = node_templates(node)
    return LLMStep(
        alias=node.alias,
        system=templates["system"],
        prompt=templates["prompt"],
        temperature=node.temperature,
        max_tokens=node.max_tokens,
        stop=tuple(node.stop) if node.stop else None,
        seed=node.seed,
        response_format=node.response_format,
        timeout_s=node.timeout_s,
        max_retries=node.max_retries,
    )


def _inline_handler(node: Node) -> Inline:
    if isinstance(node, TemplateNode):
        template = node_templates(node)["text"]
        subject = f"output of node {node.id!r}"
        return lambda values, limits: render(template, values, limits, subject)
    if isinstance(node, ParseJsonNode):
        return _parse_json_handler(parse_ref(node.source))
    if isinstance(node, GetNode):
        return _get_handler(parse_ref(node.source), parse_path(node.path))
    raise TypeError(f"no inline handler for op {node.op!r}")  # pragma: no cover


def _parse_json_handler(source: Ref) -> Inline:
    def parse(values: Values, limits: OutputLimits) -> Any:
        value = lookup(values, source)
        if not isinstance(value, str):
            return value  # already structured (a JSON-mode model output)
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise NodeError(f"{source} is not valid JSON ({exc}): {value[:200]!r}") from None

    return parse


def _get_handler(source: Ref, path: tuple[str | int, ...]) -> Inline:
    whole = Ref(source.name, source.path + path)
    return lambda values, limits: lookup(values, whole)


def _classifier(node: ClassifyNode) -> Classifier:
    """The node's compiled patterns (a graph built without validation may still fail here)."""
    try:
        return Classifier(node.labels, node.default)
    except LabelPatternError as exc:
        issue = GraphIssue(f"labels.{exc.label}", f"invalid regular expression: {exc}", node.id)
        raise GraphValidationError([issue]) from None


def record_inputs(step: Step, values: Values) -> dict[str, Any]:
    """The values a node read, by reference text (for ``record=True``)."""
    seen: dict[str, Any] = {}
    for found in node_refs(step.node):
        text = str(found.ref)
        if text not in seen and found.ref.name in values:
            try:
                seen[text] = lookup(values, found.ref)
            except NodeError:
                seen[text] = None
    return seen
