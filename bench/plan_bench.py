"""Planning benchmark: compile a 10,000-node graph into an execution plan.

The graph repeats a four-node pipeline (a model call, ``parse_json``, ``get`` and a template
that reads the previous block), so every node has references to resolve and the blocks form
one long dependency chain. Planning happens on the event loop when a job starts, so it has a
bound: ``PLAN_BOUND_S``, on the best of five runs (wall time; the process's CPU time is printed
beside it, as other work on a shared machine inflates the wall time).

    make bench-engine                       # prints the "plan 10k nodes" line at the end
    .venv/bin/python -m bench.plan_bench    # that line alone
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from app.engine.execution.plan import Plan
from app.engine.graph.model import Graph

NODES = 10_000
PLAN_BOUND_S = 0.3
RESULTS = Path(__file__).resolve().parent / "results"


def big_graph(nodes: int = NODES) -> Graph:
    """A chain of ``nodes // 4`` blocks of llm -> parse_json -> get -> template."""
    specs: list[dict[str, Any]] = []
    previous = "doc"
    for block in range(nodes // 4):
        specs += [
            {"id": f"ask{block}", "op": "llm", "alias": "fast", "prompt": f"{{{previous}}}"},
            {"id": f"parsed{block}", "op": "parse_json", "source": f"ask{block}"},
            {"id": f"field{block}", "op": "get", "source": f"parsed{block}", "path": "a[0]"},
            {"id": f"text{block}", "op": "template", "text": f"{{field{block}}} / {{doc}}"},
        ]
        previous = f"text{block}"
    data = {"name": "big", "inputs": {"doc": {}}, "nodes": specs, "outputs": {"out": previous}}
    return Graph.model_validate(data)


def plan_seconds(graph: Graph, repeat: int = 5) -> tuple[float, float]:
    """The best wall and CPU times of ``repeat`` runs of ``Plan(graph)``."""
    wall = cpu = float("inf")
    for _ in range(repeat):
        started, cpu_started = time.perf_counter(), time.process_time()
        Plan(graph)
        wall = min(wall, time.perf_counter() - started)
        cpu = min(cpu, time.process_time() - cpu_started)
    return wall, cpu


def report() -> dict[str, Any]:
    """Print the "plan 10k nodes" line, write ``bench/results/plan_bench.json``, return it."""
    graph = big_graph()
    wall, cpu = plan_seconds(graph)
    verdict = "ok" if wall < PLAN_BOUND_S else "OVER"
    print(
        f"\nplan {len(graph.nodes) // 1000}k nodes: {wall:.3f} s wall, {cpu:.3f} s CPU "
        f"(bound {PLAN_BOUND_S:.1f} s: {verdict})"
    )
    figures = {"nodes": len(graph.nodes), "wall_s": wall, "cpu_s": cpu, "bound_s": PLAN_BOUND_S}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "plan_bench.json").write_text(json.dumps(figures, indent=2))
    return figures


if __name__ == "__main__":
    sys.exit(0 if report()["wall_s"] < PLAN_BOUND_S else 1)
