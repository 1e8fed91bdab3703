"""Checks before an optimization run makes any call: every parameter the optimizer was
given must be trainable, used in the traced forward, and reachable backward from an output.

A parameter that fails any of these would never change, so the run would report the seed
as its result: the most common silent failure of prompt optimizers.
"""

from __future__ import annotations

from collections.abc import Mapping

from app.engine.errors import ConfigError
from app.engine.graph.analysis import dependencies, parse_node
from app.engine.graph.model import Graph
from app.engine.graph.refs import parse_ref
from app.engine.parameter import Parameter


def check_parameters(
    selected: list[tuple[str, Parameter]], graph: Graph, used: Mapping[str, Parameter]
) -> None:
    """Raise ``ConfigError`` naming every selected parameter that cannot be trained.

    ``used`` maps the traced graph's parameter names to the module's ``Parameter`` objects.
    """
    graph_names = {id(param): name for name, param in used.items()}
    reachable = _reachable_parameters(graph)
    problems = []
    for name, param in selected:
        graph_name = graph_names.get(id(param))
        if not param.requires_grad:
            problems.append(f"parameter {name!r} is not trainable (requires_grad is False)")
        elif graph_name is None:
            problems.append(f"parameter {name!r} is not used in the traced forward")
        elif not graph.parameters[graph_name].trainable:
            problems.append(f"parameter {name!r} is not trainable in the graph")
        elif graph_name not in reachable:
            problems.append(f"parameter {name!r} is not reachable backward from any output")
    if problems:
        raise ConfigError("preflight: " + "; ".join(problems))


def _reachable_parameters(graph: Graph) -> set[str]:
    """Names of the graph parameters read by a node that an output depends on."""
    deps = dependencies(graph)
    frontier = [parse_ref(ref).name for ref in graph.outputs.values()]
    names = set(frontier)  # an output may name a parameter itself
    seen: set[str] = set()
    while frontier:
        node_id = frontier.pop()
        if node_id in deps and node_id not in seen:
            seen.add(node_id)
            frontier.extend(deps[node_id])
    for node in graph.nodes:
        if node.id in seen:
            names.update(parse_node(node).names)
    return names & set(graph.parameters)
