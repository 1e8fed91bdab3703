"""Tasks A and B of the offline simulator, ready to train: the shipped graphs and splits
(loaded by ``examples/optimization/tasks.py``), the simulated endpoints in process or behind
the fake server, one training set-up, and the analytic accuracies tests take their
thresholds from."""

from __future__ import annotations

import json
from typing import Any

from app.engine import Graph, LLMRequest, Parameter
from app.engine.optimization import Example, TrainingHistory, evaluate, train
from app.engine.resources.manager import ResourceManager
from app.engine.testing import ScriptedLLM, scripted_manager
from app.llm.simulation import answer, counting, pricing
from app.llm.simulation import examples as shipped
from examples.optimization.tasks import (
    ANSWER_LOSS,
    answer_loss,
    graph_json,
    graph_of,
    row_splits,
    sim_resources,
    splits_of,
)

__all__ = [
    "ANSWER_LOSS",
    "answer_loss",
    "graph_json",
    "graph_of",
    "row_splits",
    "sim_resources",
    "splits_of",
]
GENERATORS = {"task-a": counting, "task-b": pricing}
ROLES = {"task": "sim-task", "critic": "sim-critic", "optimizer": "sim-optimizer"}


async def train_task(
    task: str, graph: Graph, optimizer: Any, seed: int, resources: Any, **options: Any
) -> TrainingHistory:
    """Train ``graph`` on the task's train split, 3 epochs of batches of 5, each step gated
    on its val split."""
    splits = splits_of(task)
    return await train(
        graph, splits["train"], answer_loss(), optimizer, epochs=3, batch_size=5,
        valset=splits["val"], seed=seed, resources=resources, **options,
    )  # fmt: skip


async def accuracy_on_test(task: str, graph: Graph, resources: Any) -> float:
    """The mean score of ``graph`` on the task's test split."""
    return (await evaluate(graph, splits_of(task)["test"], answer_loss(), resources=resources)).mean


def trained(graph: Graph, params: dict[str, Parameter]) -> Graph:
    """``graph`` holding the values training left in ``params``."""
    return graph.with_parameters({name: p.value for name, p in params.items()})


def fake_server_endpoints(base_url: str, more: dict[str, str] | None = None) -> dict[str, Any]:
    """An endpoints config naming the simulated roles (and ``more``, alias -> model) on the
    fake OpenAI-compatible server at ``base_url``."""
    alias = {"provider": "openai-compatible", "base_url": base_url, "max_retries": 0}
    models = {**ROLES, **(more or {})}
    return {"endpoints": {name: {**alias, "model": model} for name, model in models.items()}}


def dataset_bodies(task: str, first: int | None = None) -> dict[str, str]:
    """Each split's lines (its ``first`` lines, if given) as the JSONL body of its dataset
    upload, by split name."""
    return {name: shipped.jsonl(rows[:first]) for name, rows in row_splits(task).items()}


def run_request(data: dict[str, str], seed: int, **overrides: Any) -> dict[str, Any]:
    """An optimization request on an uploaded task (``data``: its graph and dataset ids):
    one epoch of batches of 5 within 5,000 calls, scored by the answer."""
    body: dict[str, Any] = {
        **data, "loss": ANSWER_LOSS, "schedule": {"epochs": 1, "batch_size": 5},
        "budget": {"max_calls": 5_000}, "seed": seed,
    }  # fmt: skip
    return {**body, **overrides}


def analytic(task: str, rules: set[str], split: str = "test") -> float:
    """The exact accuracy of a rule state on a split, from the generator (not from runs)."""
    generator = GENERATORS[task]
    items = shipped.split(generator.generate(shipped.total(), shipped.SEED))[split]
    return float(generator.accuracy(rules, items))


def recorded_resources(log: dict[str, list[LLMRequest]], **models: str) -> ResourceManager:
    """The simulator behind clients that keep every request by role (``task``, ``critic``,
    ``optimizer``): they stand for real endpoints with a request log. ``models`` picks a
    variant per role (``critic="sim-critic:flaky"``)."""

    def client(role: str) -> ScriptedLLM:
        model = models.get(role, ROLES[role])

        def reply(request: LLMRequest) -> str:
            log.setdefault(role, []).append(request)
            text = answer(model, request.system, request.prompt)
            assert text is not None
            return text

        return ScriptedLLM(reply)

    return scripted_manager({role: client(role) for role in ROLES}, max_retries=0)


def canary(example: Example) -> str:
    """The unique ``(ref xxxxxxxx)`` an item's input carries, for leakage scans."""
    text = json.dumps(example.input)
    start = text.rindex("(ref ")
    return text[start : text.index(")", start) + 1]
