"""``trace()``: turn a module into a graph."""

from __future__ import annotations

import inspect
import types
import typing
from typing import Any

from app.engine.errors import TraceError
from app.engine.graph.limits import NO_SIZE_LIMITS
from app.engine.graph.model import Graph
from app.engine.graph.refs import IDENTIFIER
from app.engine.graph.validate import check_graph
from app.engine.module import InferenceModule, LLMInference
from app.engine.tracing.tracer import Traced, Tracer

_TYPES = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    dict: "object",
    list: "array",
}


def trace(module: InferenceModule, *example_or_input_names: Any, name: str | None = None) -> Graph:
    """Trace ``module.forward`` into a validated graph that holds no input values.

    Input names come from ``forward``'s signature; pass identifiers to rename them (or
    example values, which are ignored: a graph never contains inputs).

    >>> from app.engine import LLMInference
    >>> trace(LLMInference("fast")).nodes[0].alias
    'fast'
    """
    return trace_module(module, *example_or_input_names, name=name).graph


def trace_module(
    module: InferenceModule, *example_or_input_names: Any, name: str | None = None
) -> Traced:
    """Like :func:`trace`, also returning how outputs map back to ``forward``'s return shape."""
    names, types_ = _input_names(module, example_or_input_names)
    traced = Tracer(module).trace(names, types_, name or _graph_name(module))
    issues = check_graph(traced.graph, limits=NO_SIZE_LIMITS)
    if issues:
        raise TraceError("traced graph is invalid: " + "; ".join(map(str, issues)))
    return traced


def _graph_name(module: InferenceModule) -> str:
    return type(module).__name__


def _input_names(module: InferenceModule, given: tuple[Any, ...]) -> tuple[list[str], list[str]]:
    if isinstance(module, LLMInference):
        params = [
            inspect.Parameter("prompt", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=str)
        ]
    else:
        params = _forward_params(module)
    if given and all(isinstance(g, str) and IDENTIFIER.fullmatch(g) for g in given):
        if len(given) != len(params) and params:
            raise TraceError(f"{len(given)} input names for {len(params)} forward() parameters")
        return list(given), [_type_of(p) for p in params] if params else ["any"] * len(given)
    if given and len(given) != len(params):
        raise TraceError(f"{len(given)} example inputs for {len(params)} forward() parameters")
    return [p.name for p in params], [_type_of(p) for p in params]


def _forward_params(module: InferenceModule) -> list[inspect.Parameter]:
    params = list(inspect.signature(module.forward).parameters.values())
    kinds = {inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD}
    if any(p.kind not in kinds for p in params):
        raise TraceError("forward() must take named positional parameters (no *args or **kwargs)")
    return params


def _type_of(param: inspect.Parameter) -> str:
    annotation = param.annotation
    if isinstance(annotation, str):
        annotation = {
            "str": str,
            "int": int,
            "float": float,
            "bool": bool,
            "dict": dict,
            "list": list,
        }.get(annotation.split("[")[0], Any)
    origin = typing.get_origin(annotation) or annotation
    if isinstance(origin, type) and not isinstance(annotation, types.UnionType):
        return _TYPES.get(origin, "any")
    return "any"
