"""Validation of one node beyond its schema, per op (see the ``check`` column of ``OPS``)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from app.engine.errors import GraphIssue
from app.engine.graph.answer_schema import answer_errors, schema_issues
from app.engine.graph.limits import CheckContext
from app.engine.graph.model import ClassifyNode, GetNode, HumanNode, LLMNode, Node, ToolNode
from app.engine.graph.patterns import PatternError, compile_pattern
from app.engine.graph.refs import RefSyntaxError, parse_path
from app.engine.llm import OPTIONAL_FIELDS


def no_issues(node: Node, context: CheckContext) -> Iterator[GraphIssue]:
    return iter(())


def check_llm(node: LLMNode, context: CheckContext) -> Iterator[GraphIssue]:
    """A conversation to send, ``tool_choice`` only with ``tools``, and a known alias."""
    if node.prompt is None and node.messages is None:
        yield GraphIssue("prompt", "an llm node needs a 'prompt' or 'messages'", node.id)
    if node.tool_choice is not None and node.tools is None:
        yield GraphIssue("tool_choice", "'tool_choice' needs 'tools'", node.id)
    yield from check_alias(node, context)
    yield from check_provider_fields(node, context)


def check_provider_fields(node: LLMNode, context: CheckContext) -> Iterator[GraphIssue]:
    """Fields the alias's provider refuses, when ``aliases`` maps aliases to those fields."""
    aliases = context.aliases
    refused = aliases.get(node.alias) if isinstance(aliases, Mapping) else None
    for name in OPTIONAL_FIELDS:
        value = getattr(node, name, None) if refused and name in refused else None
        if value is None or (name == "n" and value == 1):
            continue
        message = f"the provider of alias {node.alias!r} does not accept {name!r}"
        yield GraphIssue(name, message, node.id)


def check_alias(node: LLMNode, context: CheckContext) -> Iterator[GraphIssue]:
    """The endpoint alias exists (when the configuration is known)."""
    aliases = context.aliases
    if aliases is not None and node.alias not in aliases:
        known = ", ".join(sorted(aliases)) or "none configured"
        yield GraphIssue(
            "alias", f"unknown endpoint alias {node.alias!r} (known: {known})", node.id
        )


def check_tool(node: ToolNode, context: CheckContext) -> Iterator[GraphIssue]:
    """The tool is registered (when the registry is known)."""
    if context.tools is not None and node.name not in context.tools:
        yield GraphIssue("name", f"unknown tool {node.name!r}", node.id)


def check_path(node: GetNode, context: CheckContext) -> Iterator[GraphIssue]:
    """The path is well formed."""
    try:
        parse_path(node.path)
    except RefSyntaxError as exc:
        yield GraphIssue("path", str(exc), node.id)


def check_patterns(node: ClassifyNode, context: CheckContext) -> Iterator[GraphIssue]:
    """Every label's pattern is within the size limit and compiles in RE2."""
    limit = context.limits.pattern_chars
    for label, pattern in node.labels.items():
        field = f"labels.{label}"
        if limit is not None and len(pattern) > limit:
            yield GraphIssue(
                field,
                f"pattern is {len(pattern):,} characters, over the pattern limit of {limit:,} "
                f"({context.limits.pattern_setting})",
                node.id,
            )
            continue
        try:
            compile_pattern(pattern)
        except PatternError as exc:
            yield GraphIssue(field, f"invalid regular expression: {exc}", node.id)


def check_human(node: HumanNode, context: CheckContext) -> Iterator[GraphIssue]:
    """A usable answer schema, and a ``default`` that matches it when a timeout gives it."""
    issues = schema_issues(node.schema_)
    for field, message in issues:
        yield GraphIssue(field, message, node.id)
    if issues or node.timeout_s is None or node.on_timeout != "default":
        return
    for field, message in answer_errors(node.schema_, node.default, "default"):
        yield GraphIssue(field, message, node.id)
