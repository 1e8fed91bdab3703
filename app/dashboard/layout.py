"""A small layered (Sugiyama-style) layout for a DAG, for the dashboard's graph pictures.

1. **Layers by longest path:** a node's layer is one more than the deepest node it reads
   (sources are layer 0), so every edge points to a later layer.
2. **Order within a layer by barycentre:** a few sweeps down then up, each placing a node at
   the mean position of its neighbours in the layer before (or after), ties kept in input
   order. This removes most crossings in pipelines, without an exact (NP-hard) minimisation.
3. **Coordinates:** layers are columns left to right, a node's rank in its layer is its row;
   each column is centred on the tallest one. Edges are drawn from right side to left side.

Pure: standard library only, deterministic for a given input.

>>> placed = layout(["a", "b", "c"], {"a": [], "b": ["a"], "c": ["a"]})
>>> [(p.node, p.layer, p.row) for p in placed.nodes]
[('a', 0, 0), ('b', 1, 0), ('c', 1, 1)]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

SWEEPS = 4
NODE_W = 168
NODE_H = 56
GAP_X = 56
GAP_Y = 20
MARGIN = 12


@dataclass(frozen=True, slots=True)
class Placed:
    """A node's layer (column), row, and its box's top-left corner."""

    node: str
    layer: int
    row: int
    x: float
    y: float


@dataclass(frozen=True, slots=True)
class Layout:
    """Every node placed, the edges (from, to), and the picture's size."""

    nodes: list[Placed]
    edges: list[tuple[str, str]]
    width: float
    height: float

    def at(self, node: str) -> Placed:
        """Where ``node`` is."""
        return next(p for p in self.nodes if p.node == node)


def layers(order: Sequence[str], deps: Mapping[str, Sequence[str]]) -> dict[str, int]:
    """Longest-path layering; ``order`` must be topological (what a node reads comes first)."""
    found: dict[str, int] = {}
    for node in order:
        found[node] = 1 + max(
            (found[dep] for dep in deps.get(node, ()) if dep in found), default=-1
        )
    return found


def ordered(
    order: Sequence[str], deps: Mapping[str, Sequence[str]], layer_of: Mapping[str, int]
) -> list[list[str]]:
    """The nodes of each layer, ordered by barycentre sweeps."""
    columns: list[list[str]] = [[] for _ in range(max(layer_of.values(), default=-1) + 1)]
    for node in order:
        columns[layer_of[node]].append(node)
    readers = _readers(deps)
    for _ in range(SWEEPS):
        for index in range(1, len(columns)):
            columns[index] = _by_barycentre(columns[index], columns[index - 1], deps)
        for index in range(len(columns) - 2, -1, -1):
            columns[index] = _by_barycentre(columns[index], columns[index + 1], readers)
    return columns


def _readers(deps: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for node, reads in deps.items():
        for dep in reads:
            found.setdefault(dep, []).append(node)
    return found


def _by_barycentre(
    column: list[str], fixed: list[str], neighbours: Mapping[str, Sequence[str]]
) -> list[str]:
    rank = {node: position for position, node in enumerate(fixed)}

    def key(item: tuple[int, str]) -> tuple[float, int]:
        position, node = item
        near = [rank[n] for n in neighbours.get(node, ()) if n in rank]
        return (sum(near) / len(near) if near else float(position), position)

    return [node for _, node in sorted(enumerate(column), key=key)]


def layout(order: Sequence[str], deps: Mapping[str, Sequence[str]]) -> Layout:
    """Place the DAG's nodes (``order`` topological) in layers, left to right."""
    columns = ordered(order, deps, layers(order, deps))
    tallest = max((len(column) for column in columns), default=0)
    placed = []
    for layer, column in enumerate(columns):
        offset = (tallest - len(column)) * (NODE_H + GAP_Y) / 2
        for row, node in enumerate(column):
            x = MARGIN + layer * (NODE_W + GAP_X)
            y = MARGIN + offset + row * (NODE_H + GAP_Y)
            placed.append(Placed(node, layer, row, x, y))
    edges = [(dep, node) for node in order for dep in deps.get(node, ())]
    width = 2 * MARGIN + max(len(columns) * (NODE_W + GAP_X) - GAP_X, 0)
    height = 2 * MARGIN + max(tallest * (NODE_H + GAP_Y) - GAP_Y, 0)
    return Layout(placed, edges, width, height)
