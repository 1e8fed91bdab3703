"""The graph IR: model, references, validation, analysis and canonical form."""

from app.engine.graph.analysis import dependencies, descendants, find_cycle, topological_order
from app.engine.graph.canonical import canonical_json, graph_hash, to_data, to_dot
from app.engine.graph.limits import GraphLimits
from app.engine.graph.model import (
    ClassifyNode,
    CoalesceNode,
    GetNode,
    Graph,
    Guard,
    InputSpec,
    LLMNode,
    Node,
    ParameterSpec,
    ParseJsonNode,
    TemplateNode,
    ToolNode,
    graph_inputs,
)
from app.engine.graph.validate import check_graph, load_graph

__all__ = [
    "ClassifyNode",
    "CoalesceNode",
    "GetNode",
    "Graph",
    "GraphLimits",
    "Guard",
    "InputSpec",
    "LLMNode",
    "Node",
    "ParameterSpec",
    "ParseJsonNode",
    "TemplateNode",
    "ToolNode",
    "canonical_json",
    "check_graph",
    "dependencies",
    "descendants",
    "find_cycle",
    "graph_hash",
    "graph_inputs",
    "load_graph",
    "to_data",
    "to_dot",
    "topological_order",
]
