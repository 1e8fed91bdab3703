"""A runnable thing: a traced module or a graph, compiled once and reused for every call."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from app.engine.edits import EditCheck
from app.engine.execution.plan import Plan
from app.engine.graph.model import Graph
from app.engine.module import InferenceModule
from app.engine.tracing.api import trace_module
from app.engine.tracing.tracer import Traced

_GRAPH_CACHE_SIZE = 64
_graph_programs: OrderedDict[int, tuple[Graph, Program]] = OrderedDict()


class Program:
    """The plan of a module or graph, refreshed when a module's parameter values change."""

    def __init__(self, graph: Graph, traced: Traced | None = None) -> None:
        self.traced = traced
        self._edits = EditCheck(traced.modules if traced is not None else ())
        self._plan = Plan(graph)
        self._versions = self._parameter_versions()

    @property
    def plan(self) -> Plan:
        versions = self._parameter_versions()
        if versions != self._versions and self.traced is not None:
            values = {name: param.value for name, param in self.traced.parameters.items()}
            self._plan = Plan(self._plan.graph.with_parameters(values))
            self._versions = versions
        return self._plan

    def _parameter_versions(self) -> tuple[int, ...]:
        if self.traced is None:
            return ()
        return tuple(param.version for param in self.traced.parameters.values())

    def is_current(self) -> bool:
        """Whether no module the trace read was edited since (parameter values aside)."""
        return self._edits.unchanged()

    def unpack(self, outputs: dict[str, Any]) -> Any:
        """Outputs shaped like ``forward()``'s return value (a dict for plain graphs)."""
        return self.traced.unpack(outputs) if self.traced is not None else outputs


def program_for(target: InferenceModule | Graph) -> Program:
    """The cached program of a module (re-traced when any module in it changed) or graph."""
    if isinstance(target, Graph):
        return _graph_program(target)
    cached = target.__dict__.get("_traced")
    if cached is None or not cached.is_current():
        traced = trace_module(target)
        cached = Program(traced.graph, traced)
        object.__setattr__(target, "_traced", cached)
    assert isinstance(cached, Program)
    return cached


def _graph_program(graph: Graph) -> Program:
    entry = _graph_programs.get(id(graph))
    if entry is not None and entry[0] is graph:
        _graph_programs.move_to_end(id(graph))
        return entry[1]
    program = Program(graph)
    _graph_programs[id(graph)] = (graph, program)
    if len(_graph_programs) > _GRAPH_CACHE_SIZE:
        _graph_programs.popitem(last=False)
    return program
