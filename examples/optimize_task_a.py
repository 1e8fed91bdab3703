"""Train Task A (category counting) offline with the library: feedback, backward, SFA, the gate.

Run it with ``.venv/bin/python examples/optimize_task_a.py``. Every role is served by the
offline simulator (``sim-task``, ``sim-critic``, ``sim-optimizer``), so it needs no network.
"""

from __future__ import annotations

import asyncio

# examples/optimization/tasks.py: this script's directory is the first on the import path
from optimization.tasks import answer_loss, graph_of, sim_resources, splits_of

from app.engine.optimization import SFAOptimizer, evaluate, graph_parameters, train

RESOURCES = sim_resources()


async def main() -> None:
    graph = graph_of("task-a")
    splits = splits_of("task-a")
    trainset, valset, testset = splits["train"], splits["val"], splits["test"]
    loss = answer_loss()
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
