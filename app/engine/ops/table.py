"""The closed set of ops, written once: per op, everything each part of the engine needs.

Validation, reference analysis, DOT rendering and plan compilation all read this table
instead of testing node classes, so adding an op is one entry here plus its functions (and
its spec model in the ``Node`` union of :mod:`app.engine.graph.model`). The scheduler runs a
step with the method its compiler named, as ``torch.fx.Interpreter.run_node`` does by op.

>>> sorted(OPS) == sorted(LEGAL_OPS)
True
>>> OPS["llm"].templates
('system', 'prompt', 'messages')
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from app.engine.errors import GraphIssue
from app.engine.graph.limits import CheckContext
from app.engine.graph.model import (
    ClassifyNode,
    CoalesceNode,
    GetNode,
    HumanNode,
    LLMNode,
    Node,
    NodeBase,
    ParseJsonNode,
    TemplateNode,
    ToolNode,
)
from app.engine.ops import checks, compilers

if TYPE_CHECKING:
    from app.engine.execution.step import Step
    from app.engine.graph.analysis import ParsedNode

Checker = Callable[[Any, CheckContext], Iterator[GraphIssue]]
Compiler = Callable[["Step", Any, "ParsedNode"], None]


def _no_detail(node: Any) -> tuple[str, ...]:
    return ()


@dataclass(frozen=True, slots=True)
class OpSpec:
    """One op. ``templates`` and ``references`` name the fields that hold templates or plain
    references (a ``str``, a ``list`` of them, or a ``dict`` of them); ``check`` validates a
    node beyond its schema; ``detail`` gives extra DOT label lines; ``compile`` fills a step."""

    model: type[NodeBase]
    compile: Compiler
    templates: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    check: Checker = checks.no_issues
    detail: Callable[[Any], tuple[str, ...]] = _no_detail


def _alias(node: LLMNode) -> tuple[str, ...]:
    return (node.alias,)


OPS: dict[str, OpSpec] = {
    "llm": OpSpec(
        LLMNode,
        compilers.compile_llm,
        templates=("system", "prompt", "messages"),
        check=checks.check_llm,
        detail=_alias,
    ),
    "template": OpSpec(TemplateNode, compilers.compile_template, templates=("text",)),
    "parse_json": OpSpec(ParseJsonNode, compilers.compile_parse_json, references=("source",)),
    "get": OpSpec(GetNode, compilers.compile_get, references=("source",), check=checks.check_path),
    "classify": OpSpec(
        ClassifyNode,
        compilers.compile_classify,
        references=("source",),
        check=checks.check_patterns,
    ),
    "coalesce": OpSpec(CoalesceNode, compilers.compile_coalesce, references=("sources",)),
    "tool": OpSpec(ToolNode, compilers.compile_tool, templates=("args",), check=checks.check_tool),
    "human": OpSpec(
        HumanNode, compilers.compile_human, templates=("prompt",), check=checks.check_human
    ),
}
LEGAL_OPS = tuple(OPS)  # as torch.fx's Graph._legal_ops


def op_of(node: Node) -> OpSpec:
    """The table entry of a node's op."""
    return OPS[node.op]
