"""Task A of the offline simulator, ready to train: the shipped graph and splits, the
simulated endpoints, and the analytic accuracies the tests take their thresholds from."""

from __future__ import annotations

import json
from pathlib import Path

from app.engine import Graph, ResourceConfig, load_graph
from app.engine.optimization import Example, VerifierLoss, verifier
from app.llm.simulation import examples as shipped
from app.llm.simulation.counting import accuracy, generate

ROOT = Path(__file__).resolve().parents[2] / "examples" / "optimization" / "task-a"


def task_a_graph() -> Graph:
    return load_graph(json.loads((ROOT / "graph.json").read_text(encoding="utf-8")))


def task_a_splits() -> dict[str, list[Example]]:
    """train (lines 1-40), val (41-100) and test (101-220), ids = line numbers."""
    lines = (ROOT / "dataset.jsonl").read_text(encoding="utf-8").splitlines()
    rows = [
        Example(row["input"], row["expected"], n) for n, row in enumerate(map(json.loads, lines), 1)
    ]
    return shipped.split(rows)


def analytic(rules: set[str], split: str = "test") -> float:
    """The exact accuracy of a rule state on a split, from the generator (not from runs)."""
    return accuracy(rules, shipped.split(generate(shipped.total(), shipped.SEED))[split])


def sim_resources(critic: str = "sim-critic", optimizer: str = "sim-optimizer") -> ResourceConfig:
    def endpoint(model: str) -> dict[str, object]:
        return {"provider": "simulated", "model": model, "max_concurrent": 64, "max_retries": 0}

    return ResourceConfig.from_dict(
        {"endpoints": {"task": endpoint("sim-task"), "critic": endpoint(critic),
                       "optimizer": endpoint(optimizer)}}
    )  # fmt: skip


def answer_loss() -> VerifierLoss:
    return VerifierLoss(verifier("answer_equals"))


def canary(example: Example) -> str:
    """The unique ``(ref xxxxxxxx)`` an item's question carries, for leakage scans."""
    question: str = example.input["question"]
    return question[question.rindex("(ref ") :]
