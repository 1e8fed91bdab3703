"""The simulated optimization roles over real HTTP, through the fake server."""

from __future__ import annotations

import pytest

from app.engine import ExecutionError, LLMRequest, load_graph, run, run_batch
from app.engine.optimization.prompts import CRITIC_SYSTEM, Target, critic_request
from app.llm.simulated import simulate
from app.llm.simulation import canaries, counting
from examples.optimization.tasks import graph_of, rows_of
from tests.support.engine import MakeManager
from tests.support.fake_llm import FakeLLM
from tests.support.simulation import answered, verdict

ASK = {
    "name": "ask",
    "nodes": [
        {"id": "ask", "op": "llm", "alias": "critic", "system": "{system}", "prompt": "{prompt}"}
    ],
    "inputs": {"system": {}, "prompt": {}},
    "outputs": {"reply": "ask"},
}


async def test_task_a_over_http_scores_the_analytic_start_and_the_log_shows_every_canary(
    fake_llm: FakeLLM, endpoints: MakeManager
) -> None:
    graph, data = graph_of("task-a"), rows_of("task-a")
    manager = endpoints(task={"model": "sim-task"})
    results = await run_batch(graph, [row["input"] for row in data], resources=manager)
    right = [
        answered(r.output["answer"]) == row["expected"]
        for r, row in zip(results, data, strict=True)
    ]
    items = counting.generate(len(data), 0)
    assert sum(right) / len(data) == counting.accuracy({"R3"}, items)
    log = fake_llm.log()
    assert {entry["model"] for entry in log} == {"sim-task"}
    seen = canaries(" ".join(entry["prompt"] for entry in log))
    assert seen == {item.ref for item in items}


async def test_the_critic_answers_over_http_as_it_does_in_process(
    fake_llm: FakeLLM, endpoints: MakeManager
) -> None:
    row = rows_of("task-a")[0]
    seed = graph_of("task-a").parameters
    system = seed["instructions"].value
    question = str(row["input"]["question"])  # type: ignore[index]
    output = simulate(LLMRequest("sim-task", system, question), "sim-task").text
    request = critic_request(
        "count",
        system,
        question,
        output,
        [verdict(output, str(row["expected"]))],
        [Target("instructions", "parameter", "the system prompt", system)],
    )
    manager = endpoints(critic={"model": "sim-critic"})
    reply = await run(
        load_graph(ASK), {"system": CRITIC_SYSTEM, "prompt": request}, resources=manager
    )
    assert (
        reply["reply"]
        == simulate(LLMRequest("sim-critic", CRITIC_SYSTEM, request), "sim-critic").text
    )
    assert "number words were not converted to digits" in reply["reply"]
    assert [entry["model"] for entry in fake_llm.log()] == ["sim-critic"]


async def test_a_failing_critic_answers_500_and_the_call_fails_as_transient(
    fake_llm: FakeLLM, endpoints: MakeManager
) -> None:
    manager = endpoints(critic={"model": "sim-critic:fail", "max_retries": 1})
    with pytest.raises(ExecutionError) as caught:
        await run(
            load_graph(ASK), {"system": CRITIC_SYSTEM, "prompt": "anything"}, resources=manager
        )
    assert "ask" in str(caught.value)
    assert [entry["status"] for entry in fake_llm.log()] == [500, 500]
