"""How each op is compiled into a :class:`Step` (the ``compile`` column of ``OPS``).

A compiler sets ``step.run``, the scheduler method that runs the node, and the fields that
method reads, from the node and its references parsed once by the plan.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from app.engine.errors import GraphIssue, GraphValidationError, NodeError
from app.engine.execution.limits import OutputLimits
from app.engine.execution.step import Inline, LLMStep, Step
from app.engine.execution.values import Values, lookup, render
from app.engine.graph.messages import message_data
from app.engine.graph.model import (
    ClassifyNode,
    CoalesceNode,
    GetNode,
    HumanNode,
    LLMNode,
    ParseJsonNode,
    TemplateNode,
    ToolNode,
)
from app.engine.graph.patterns import Classifier, LabelPatternError
from app.engine.graph.refs import Ref, parse_path, parse_template
from app.engine.llm import OPTIONAL_FIELDS

if TYPE_CHECKING:
    from app.engine.graph.analysis import ParsedNode


# NOTE: ``stop`` and ``tools`` are converted (lists to tuples, models to JSON) below.
_PLAIN_OPTIONS = tuple(name for name in OPTIONAL_FIELDS if name not in ("stop", "tools"))


def compile_llm(step: Step, node: LLMNode, parsed: ParsedNode) -> None:
    step.run = "run_call"
    step.llm = LLMStep(
        alias=node.alias,
        system=parsed.templates["system"],
        prompt=parsed.templates.get("prompt", _EMPTY),
        response_format=node.response_format,
        timeout_s=node.timeout_s,
        max_retries=node.max_retries,
        messages=message_data(node.messages or ()),
        templates={k: t for k, t in parsed.templates.items() if k.startswith("messages[")},
        options=llm_options(node),
    )


def llm_options(node: LLMNode) -> dict[str, Any]:
    """The node's sampling and tool fields that are set, as ``LLMRequest`` keywords."""
    options = {name: getattr(node, name) for name in _PLAIN_OPTIONS}
    options = {k: v for k, v in options.items() if v is not None}
    if isinstance(options.get("tool_choice"), BaseModel):
        options["tool_choice"] = options["tool_choice"].model_dump(mode="json")
    if node.stop:
        options["stop"] = tuple(node.stop)
    if node.tools:
        options["tools"] = tuple(t.model_dump(mode="json", exclude_none=True) for t in node.tools)
    return options


_EMPTY = parse_template("")


def compile_template(step: Step, node: TemplateNode, parsed: ParsedNode) -> None:
    template = parsed.templates["text"]
    subject = f"output of node {node.id!r}"
    step.inline = lambda values, limits: render(template, values, limits, subject)


def compile_parse_json(step: Step, node: ParseJsonNode, parsed: ParsedNode) -> None:
    step.inline = _parse_json(parsed.references["source"])


def _parse_json(source: Ref) -> Inline:
    def parse(values: Values, limits: OutputLimits) -> Any:
        value = lookup(values, source)
        if not isinstance(value, str):
            return value  # already structured (a JSON-mode model output)
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise NodeError(f"{source} is not valid JSON ({exc}): {value[:200]!r}") from None

    return parse


def compile_get(step: Step, node: GetNode, parsed: ParsedNode) -> None:
    source = parsed.references["source"]
    whole = Ref(source.name, source.path + parse_path(node.path))
    step.inline = lambda values, limits: lookup(values, whole)


def compile_classify(step: Step, node: ClassifyNode, parsed: ParsedNode) -> None:
    step.run = "run_classify"
    step.classify = (parsed.references["source"], classifier_of(node))


def classifier_of(node: ClassifyNode) -> Classifier:
    """The node's compiled patterns (a graph built without validation may still fail here)."""
    try:
        return Classifier(node.labels, node.default)
    except LabelPatternError as exc:
        issue = GraphIssue(f"labels.{exc.label}", f"invalid regular expression: {exc}", node.id)
        raise GraphValidationError([issue]) from None


def compile_coalesce(step: Step, node: CoalesceNode, parsed: ParsedNode) -> None:
    step.run = "run_coalesce"
    step.coalesce = tuple(parsed.references[f"sources[{i}]"] for i in range(len(node.sources)))


def compile_tool(step: Step, node: ToolNode, parsed: ParsedNode) -> None:
    step.run = "run_call"
    step.tool = node.name
    step.tool_args = tuple(
        (field.removeprefix("args."), template) for field, template in parsed.templates.items()
    )


def compile_human(step: Step, node: HumanNode, parsed: ParsedNode) -> None:
    """The step renders the prompt; the scheduler's ``run_human`` asks for the answer."""
    template = parsed.templates["prompt"]
    subject = f"prompt of node {node.id!r}"
    step.run = "run_human"
    step.inline = lambda values, limits: render(template, values, limits, subject)
