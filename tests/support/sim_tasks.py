"""Tasks A and B of the offline simulator, ready to train: the shipped graphs and splits,
the simulated endpoints, and the analytic accuracies tests take their thresholds from."""

from __future__ import annotations

import json
from pathlib import Path

from app.engine import Graph, LLMRequest, ResourceConfig, load_graph
from app.engine.optimization import Example, VerifierLoss, verifier
from app.engine.resources.manager import ResourceManager
from app.engine.testing import ScriptedLLM, scripted_manager
from app.llm.simulation import answer, counting, pricing
from app.llm.simulation import examples as shipped

ROOT = Path(__file__).resolve().parents[2] / "examples" / "optimization"
GENERATORS = {"task-a": counting, "task-b": pricing}


def graph_of(task: str) -> Graph:
    return load_graph(json.loads((ROOT / task / "graph.json").read_text(encoding="utf-8")))


def splits_of(task: str) -> dict[str, list[Example]]:
    """train (lines 1-40), val (41-100) and test (101-220), ids = line numbers."""
    lines = (ROOT / task / "dataset.jsonl").read_text(encoding="utf-8").splitlines()
    rows = [
        Example(row["input"], row["expected"], n) for n, row in enumerate(map(json.loads, lines), 1)
    ]
    return shipped.split(rows)


def analytic(task: str, rules: set[str], split: str = "test") -> float:
    """The exact accuracy of a rule state on a split, from the generator (not from runs)."""
    generator = GENERATORS[task]
    items = shipped.split(generator.generate(shipped.total(), shipped.SEED))[split]
    return float(generator.accuracy(rules, items))


def sim_resources(critic: str = "sim-critic", optimizer: str = "sim-optimizer") -> ResourceConfig:
    def endpoint(model: str) -> dict[str, object]:
        return {"provider": "simulated", "model": model, "max_concurrent": 64, "max_retries": 0}

    return ResourceConfig.from_dict(
        {"endpoints": {"task": endpoint("sim-task"), "critic": endpoint(critic),
                       "optimizer": endpoint(optimizer)}}
    )  # fmt: skip


def recorded_resources(log: dict[str, list[LLMRequest]], **models: str) -> ResourceManager:
    """The simulator behind clients that keep every request by role (``task``, ``critic``,
    ``optimizer``): they stand for real endpoints with a request log. ``models`` picks a
    variant per role (``critic="sim-critic:flaky"``)."""

    def client(role: str) -> ScriptedLLM:
        model = models.get(role, f"sim-{role}")

        def reply(request: LLMRequest) -> str:
            log.setdefault(role, []).append(request)
            text = answer(model, request.system, request.prompt)
            assert text is not None
            return text

        return ScriptedLLM(reply)

    roles = ("task", "critic", "optimizer")
    return scripted_manager({role: client(role) for role in roles}, max_retries=0)


def answer_loss() -> VerifierLoss:
    return VerifierLoss(verifier("answer_equals"))


def canary(example: Example) -> str:
    """The unique ``(ref xxxxxxxx)`` an item's input carries, for leakage scans."""
    text = json.dumps(example.input)
    start = text.rindex("(ref ")
    return text[start : text.index(")", start) + 1]
