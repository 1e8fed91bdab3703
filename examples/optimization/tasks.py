"""Tasks A and B as shipped beside this file, loaded: the graph, the dataset's lines and
their train / val / test splits (lines 1-40, 41-100, 101-220), the loss, and the offline
simulator's endpoints for every role. No network is needed.

>>> from examples.optimization.tasks import graph_of, splits_of
>>> graph_of("task-a").name, [len(part) for part in splits_of("task-a").values()]
('task-a-counting', [40, 60, 120])
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from app.engine import Graph, ResourceConfig, load_graph
from app.engine.optimization import Example, VerifierLoss, verifier
from app.llm.simulation.examples import split

ROOT = Path(__file__).resolve().parent
ANSWER_LOSS = {"verifiers": [{"op": "answer_equals"}]}  # the loss of both tasks, as a spec


def graph_json(task: str) -> dict[str, Any]:
    """The task's graph document (``task-a`` or ``task-b``)."""
    loaded: dict[str, Any] = json.loads((ROOT / task / "graph.json").read_text(encoding="utf-8"))
    return loaded


def graph_of(task: str) -> Graph:
    return load_graph(graph_json(task))


def rows_of(task: str) -> list[dict[str, Any]]:
    """The dataset's lines, ``{"input": ..., "expected": ...}`` each."""
    lines = (ROOT / task / "dataset.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def row_splits(task: str) -> dict[str, list[dict[str, Any]]]:
    """The lines by split: ``train``, ``val``, ``test``."""
    return split(rows_of(task))


def examples_of(task: str) -> list[Example]:
    """Every line as an example whose id is its line number."""
    return [Example(row["input"], row["expected"], n) for n, row in enumerate(rows_of(task), 1)]


def splits_of(task: str) -> dict[str, list[Example]]:
    """The examples by split: ``train``, ``val``, ``test``."""
    return split(examples_of(task))


def sim_resources(
    critic: str = "sim-critic", optimizer: str = "sim-optimizer", latency_s: float = 0.0,
    concurrency: int = 64,
) -> ResourceConfig:  # fmt: skip
    """The simulated ``task``, ``critic`` and ``optimizer`` endpoints; ``critic`` and
    ``optimizer`` pick a model variant (``sim-critic:generic``)."""
    models = {"task": "sim-task", "critic": critic, "optimizer": optimizer}
    return ResourceConfig.from_dict({"endpoints": {
        role: {"provider": "simulated", "model": model, "max_concurrent": concurrency,
               "max_retries": 0, "simulated_latency_s": latency_s}
        for role, model in models.items()
    }})  # fmt: skip


def answer_loss() -> VerifierLoss:
    """The loss of both tasks: the final ``Answer:`` line equals the expected one."""
    return VerifierLoss(verifier("answer_equals"))
