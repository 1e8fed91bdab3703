"""Train Task A (category counting) offline with the library: feedback, backward, SFA, the gate.

Run it with ``.venv/bin/python examples/optimize_task_a.py``. Every role is served by the
offline simulator (``sim-task``, ``sim-critic``, ``sim-optimizer``), so it needs no network.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from app.engine import ResourceConfig, load_graph
from app.engine.optimization import (
    Example,
    SFAOptimizer,
    VerifierLoss,
    evaluate,
    graph_parameters,
    train,
    verifier,
)

TASK = Path(__file__).parent / "optimization" / "task-a"
RESOURCES = ResourceConfig.from_dict({"endpoints": {
    role: {"provider": "simulated", "model": f"sim-{role}", "max_concurrent": 64}
    for role in ("task", "critic", "optimizer")
}})  # fmt: skip


def examples() -> list[Example]:
    lines = (TASK / "dataset.jsonl").read_text(encoding="utf-8").splitlines()
    return [
        Example(row["input"], row["expected"], n) for n, row in enumerate(map(json.loads, lines))
    ]


async def main() -> None:
    graph = load_graph(json.loads((TASK / "graph.json").read_text(encoding="utf-8")))
    items = examples()
    trainset, valset, testset = items[:40], items[40:100], items[100:]
    loss = VerifierLoss(verifier("answer_equals"))
    params = graph_parameters(graph)
    before = await evaluate(graph, testset, loss, resources=RESOURCES)
    optimizer = SFAOptimizer(params, conservatism=0.5)
    history = await train(
        graph, trainset, loss, optimizer, epochs=3, batch_size=5, valset=valset, seed=1,
        resources=RESOURCES,
    )  # fmt: skip
    tuned = graph.with_parameters({name: p.value for name, p in params.items()})
    after = await evaluate(tuned, testset, loss, resources=RESOURCES)
    print(f"validation baseline {history.baseline:.2f}")
    for step in history.steps:
        if step.proposals:
            verdict = "accepted" if step.accepted else f"rejected ({step.reason})"
            print(f"step {step.step}: delta {step.delta:+.2f} {verdict}, val {step.score:.2f}")
    print(
        f"stop reason: {history.stop_reason}; test accuracy {before.mean:.2f} -> {after.mean:.2f}"
    )
    print("instructions now:", params["instructions"].value)


if __name__ == "__main__":
    asyncio.run(main())
