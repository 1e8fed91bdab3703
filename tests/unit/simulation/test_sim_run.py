"""The shipped Task A example, run through the engine with the simulated provider."""

from __future__ import annotations

from app.engine import ResourceConfig, run_batch
from app.llm.simulation import examples, pricing
from app.llm.simulation.counting import accuracy, generate
from app.services.endpoints import SIMULATED
from examples.optimization.tasks import ROOT, graph_of, rows_of
from tests.support.simulation import answered


def test_the_shipped_files_equal_the_generators_output() -> None:
    for name, text in examples.files().items():
        assert (ROOT / name).read_text(encoding="utf-8") == text, name


async def test_a_run_of_the_task_a_graph_scores_the_analytic_start_accuracy() -> None:
    graph, rows = graph_of("task-a"), rows_of("task-a")
    results = await run_batch(
        graph, [row["input"] for row in rows], resources=ResourceConfig.from_dict(SIMULATED)
    )
    right = [
        answered(result.output["answer"]) == row["expected"]
        for result, row in zip(results, rows, strict=True)
    ]
    assert sum(right) / len(rows) == accuracy({"R3"}, generate(len(rows), examples.SEED))


async def test_a_run_of_the_task_b_graph_scores_the_analytic_start_accuracy() -> None:
    graph, rows = graph_of("task-b"), rows_of("task-b")
    results = await run_batch(
        graph, [row["input"] for row in rows], resources=ResourceConfig.from_dict(SIMULATED)
    )
    right = [
        answered(result.output["answer"]) == row["expected"]
        for result, row in zip(results, rows, strict=True)
    ]
    assert sum(right) / len(rows) == pricing.accuracy(
        {"C2"}, pricing.generate(len(rows), examples.SEED)
    )
