"""The metric names a Grafana dashboard queries, read from its PromQL with a real parser.

``dashboard_metric_names(path)`` is what a test compares with the families a running service
exports on ``/metrics``: every ``inf_*`` metric selected by a panel's (or a query variable's)
expression, with the ``_bucket``, ``_sum`` and ``_count`` suffixes of histogram series cut to
the family name. Counters keep their ``_total`` (the name they are queried and exposed by).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import promql_parser

PREFIX = "inf_"
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
# Grafana's interval macros are not PromQL: any duration parses the same.
_GRAFANA_INTERVALS = re.compile(r"\$\{?__(?:rate_interval|interval|range)\}?")


def dashboard_metric_names(path: str | Path) -> set[str]:
    """Every ``inf_*`` metric family queried by the dashboard JSON at ``path``."""
    dashboard = json.loads(Path(path).read_text(encoding="utf-8"))
    names: set[str] = set()
    for expr in dashboard_expressions(dashboard):
        names |= {family(name) for name in metric_names(expr) if name.startswith(PREFIX)}
    return names


def dashboard_expressions(dashboard: dict[str, Any]) -> list[str]:
    """The PromQL of every panel target (rows and nested panels included) and query variable."""
    found = list(_target_expressions(dashboard.get("panels", [])))
    for variable in dashboard.get("templating", {}).get("list", []):
        query = variable.get("query") if variable.get("type") == "query" else None
        if isinstance(query, dict):
            query = query.get("query")
        if isinstance(query, str) and query:
            found.append(_variable_query(query))
    return found


def metric_names(expr: str) -> set[str]:
    """The metric names selected by one PromQL expression (``ValueError`` if it does not parse)."""
    ast = promql_parser.parse(_GRAFANA_INTERVALS.sub("5m", expr))
    names: set[str] = set()

    def visit(node: Any) -> bool:
        if isinstance(node, promql_parser.VectorSelector):
            if node.name:
                names.add(node.name)
            names.update(
                matcher.value
                for matcher in node.matchers.matchers
                if matcher.name == "__name__" and matcher.op == promql_parser.MatchOp.Equal
            )
        return True

    promql_parser.walk(ast, visit)
    return names


def family(name: str) -> str:
    """The family of a series name: ``x_bucket``, ``x_sum`` and ``x_count`` belong to ``x``."""
    for suffix in HISTOGRAM_SUFFIXES:
        if name.endswith(suffix):
            return name.removesuffix(suffix)
    return name


def _target_expressions(panels: list[dict[str, Any]]) -> Iterator[str]:
    for panel in panels:
        for target in panel.get("targets", []):
            expr = target.get("expr")
            if isinstance(expr, str) and expr:
                yield expr
        yield from _target_expressions(panel.get("panels", []))


def _variable_query(query: str) -> str:
    """``label_values(expr, label)`` and ``query_result(expr)`` wrap PromQL; the rest is."""
    match = re.fullmatch(r"\s*(?:label_values|query_result)\((.*)\)\s*", query, re.DOTALL)
    if not match:
        return query
    inner = match.group(1)
    if query.lstrip().startswith("label_values") and "," in inner:
        inner = inner.rsplit(",", 1)[0]
    return inner
