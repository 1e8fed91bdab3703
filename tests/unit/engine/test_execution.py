"""Scheduler semantics with an in-process scripted provider (no network, no disk)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from app.engine import (
    ExecutionError,
    ExecutionSettings,
    ForwardRecord,
    InferenceModule,
    InputError,
    LLMInference,
    NodeStatus,
    PermanentLLMError,
    RateLimitedError,
    TransientLLMError,
    branch,
    load_graph,
    parse_json,
    run,
)
from app.engine.execution.calls import backoff_delay
from app.engine.testing import ScriptedLLM, scripted_manager


class Diamond(InferenceModule):
    """Two independent extractions joined by one comparison."""

    def __init__(self) -> None:
        super().__init__()
        self.left = LLMInference("fast", system_prompt="left")
        self.right = LLMInference("fast", system_prompt="right")
        self.join = LLMInference("smart")

    def forward(self, a: str, b: str) -> Any:
        x, y = self.left(a), self.right(b)
        return {"left": x, "right": y, "joined": self.join(f"{x} + {y}")}


def test_backoff_is_exponential_with_full_jitter() -> None:
    assert [backoff_delay(n, 1.0) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 4.0]
    assert backoff_delay(20, 1.0) == 30.0
    assert backoff_delay(3, 0.25) == 0.5


async def test_independent_calls_run_concurrently_and_outputs_flow() -> None:
    fast = ScriptedLLM(lambda r: f"<{r.system}:{r.prompt}>", latency_s=0.05)
    smart = ScriptedLLM(lambda r: f"[{r.prompt}]")
    manager = scripted_manager({"fast": fast, "smart": smart})
    out = await run(Diamond(), "A", "B", resources=manager)
    assert out == {"left": "<left:A>", "right": "<right:B>", "joined": "[<left:A> + <right:B>]"}
    assert fast.peak_in_flight == 2


async def test_failed_node_cancels_descendants_only_and_error_names_it() -> None:
    fast = ScriptedLLM(lambda r: PermanentLLMError("bad request") if r.system == "left" else "ok")
    manager = scripted_manager({"fast": fast, "smart": ScriptedLLM()})
    with pytest.raises(ExecutionError) as caught:
        await run(Diamond(), "A", "B", resources=manager)
    error = caught.value
    assert [(f.node, f.error_type, f.error) for f in error.failures] == [
        ("left", "PermanentLLMError", "bad request")
    ]
    assert "left: PermanentLLMError: bad request" in str(error)
    assert error.outputs == {"left": None, "right": "ok", "joined": None}
    statuses = {n: r.status for n, r in error.result.records.items()}
    assert statuses == {
        "left": NodeStatus.FAILED,
        "right": NodeStatus.SUCCEEDED,
        "template": NodeStatus.CANCELLED,
        "join": NodeStatus.CANCELLED,
    }
    assert len(fast.calls) == 2  # not retried: permanent


async def test_transient_errors_are_retried_then_succeed() -> None:
    failures = iter([TransientLLMError("503"), TransientLLMError("503")])
    fast = ScriptedLLM(lambda r: next(failures, "fine"))
    manager = scripted_manager({"fast": fast})
    record = await run(LLMInference("fast"), "q", resources=manager, record=True)
    assert isinstance(record, ForwardRecord)
    assert record.outputs == "fine"
    node = record.nodes["llm"]
    assert node.attempts == 3
    assert node.retries == ["TransientLLMError", "TransientLLMError"]


async def test_transient_errors_stop_after_max_retries() -> None:
    fast = ScriptedLLM(lambda r: TransientLLMError("always down"))
    manager = scripted_manager({"fast": fast})
    with pytest.raises(ExecutionError) as caught:
        await run(LLMInference("fast"), "q", resources=manager, max_retries=1)
    assert caught.value.failures[0].attempts == 2
    assert len(fast.calls) == 2


async def test_rate_limited_calls_are_requeued_without_losing_siblings() -> None:
    """A 429 on one branch while its sibling already finished: the join still runs."""
    limited = iter([RateLimitedError("slow down", retry_after=0.05)])
    fast = ScriptedLLM(lambda r: next(limited, "late") if r.system == "left" else "early")
    manager = scripted_manager({"fast": fast, "smart": ScriptedLLM(lambda r: r.prompt)})
    out = await asyncio.wait_for(run(Diamond(), "A", "B", resources=manager), 5)
    assert out["joined"] == "late + early"


async def test_timeout_is_transient_and_bounded() -> None:
    slow = ScriptedLLM(latency_s=1.0)
    manager = scripted_manager({"fast": slow})
    with pytest.raises(ExecutionError) as caught:
        await run(LLMInference("fast", timeout_s=0.02, max_retries=1), "q", resources=manager)
    assert "no answer within 0.02s" in caught.value.failures[0].error
    assert len(slow.calls) == 2


async def test_concurrency_cap_holds_within_a_batch() -> None:
    fast = ScriptedLLM(latency_s=0.01)
    manager = scripted_manager({"fast": fast}, max_concurrent=3)
    results = await run_many(LLMInference("fast"), [f"q{i}" for i in range(20)], resources=manager)
    assert [r.output for r in results] == [f"echo: q{i}" for i in range(20)]
    assert fast.peak_in_flight == 3


async def run_many(module: InferenceModule, items: list[Any], **settings: Any) -> list[Any]:
    from app.engine import run_batch

    return await run_batch(module, items, **settings)


async def test_batch_streams_in_completion_order_and_reports_progress() -> None:
    from app.engine import stream

    fast = ScriptedLLM(lambda r: r.prompt)
    fast.latency_s = 0.0
    slow_first = ScriptedLLM(latency_s=0.0)
    manager = scripted_manager({"fast": fast})
    progress: list[tuple[int, int | None]] = []
    seen = [
        r.index
        async for r in stream(
            LLMInference("fast"),
            ["a", "b", "c"],
            resources=manager,
            ordered=False,
            on_progress=lambda done, total: progress.append((done, total)),
        )
    ]
    assert sorted(seen) == [0, 1, 2]
    assert progress == [(1, 3), (2, 3), (3, 3)]
    del slow_first


async def test_batch_memory_is_bounded_by_items_in_flight() -> None:
    pulled = 0

    def items() -> Any:
        nonlocal pulled
        for i in range(100):
            pulled += 1
            yield f"q{i}"

    from app.engine import stream

    gate = asyncio.Event()
    fast = ScriptedLLM()
    manager = scripted_manager({"fast": fast})
    results = stream(LLMInference("fast"), items(), resources=manager, max_in_flight=5)
    first = await anext(results)
    assert first.index == 0
    assert pulled <= 6  # five in flight, plus at most one refill after the first result
    await results.aclose()
    gate.set()


async def test_per_item_failures_do_not_fail_the_batch() -> None:
    fast = ScriptedLLM(lambda r: PermanentLLMError("no") if r.prompt == "bad" else r.prompt)
    manager = scripted_manager({"fast": fast})
    results = await run_many(LLMInference("fast"), ["ok", "bad", 7], resources=manager)
    assert results[0].output == "ok"
    assert isinstance(results[1].error, ExecutionError)
    assert isinstance(results[2].error, InputError)


async def test_calling_a_bound_module_runs_it_and_a_list_is_a_batch() -> None:
    manager = scripted_manager({"fast": ScriptedLLM(), "smart": ScriptedLLM()})
    module = Diamond().bind(manager)
    out = await module("A", "B")
    assert out["left"] == "echo: A"
    batch = await module([("A", "B"), {"a": "C", "b": "D"}])
    assert [r.output["right"] for r in batch] == ["echo: B", "echo: D"]


async def test_settings_precedence_call_over_bind_over_context() -> None:
    slow = ScriptedLLM(latency_s=0.2)
    manager = scripted_manager({"fast": slow})
    module = LLMInference("fast").bind(manager, timeout_s=0.01, max_retries=0)
    with ExecutionSettings(timeout_s=5.0):
        with pytest.raises(ExecutionError, match=r"no answer within 0\.01s"):
            await module("q")  # bind beats context
        assert await module("q", timeout_s=1.0) == "echo: q"  # call beats bind


async def test_nested_settings_keep_outer_resources() -> None:
    manager = scripted_manager({"fast": ScriptedLLM()})
    with ExecutionSettings(resources=manager), ExecutionSettings(timeout_s=3.0):
        assert await LLMInference("fast")("x") == "echo: x"


async def test_branch_skips_the_other_arm_and_coalesces() -> None:
    class Route(InferenceModule):
        def __init__(self) -> None:
            super().__init__()
            self.judge = LLMInference("fast", response_format="json")
            self.yes = LLMInference("fast", system_prompt="yes")
            self.no = LLMInference("fast", system_prompt="no")

        def forward(self, q: str) -> Any:
            verdict = self.judge(q)
            return branch(verdict["ok"], lambda: self.yes(q), lambda: self.no(q))

    fast = ScriptedLLM(lambda r: '{"ok": true}' if not r.system else r.system)
    record = await run(Route(), "q", resources=scripted_manager({"fast": fast}), record=True)
    assert record.outputs == "yes"
    assert record.nodes["no"].status is NodeStatus.SKIPPED
    assert len(fast.calls) == 2


async def test_record_captures_every_node_input_and_output() -> None:
    class Chain(InferenceModule):
        def __init__(self) -> None:
            super().__init__()
            self.llm = LLMInference("fast", system_prompt="S")

        def forward(self, q: str) -> Any:
            data = parse_json(self.llm(f"Q: {q}"))
            return data["a"]

    fast = ScriptedLLM(lambda r: '{"a": 1}')
    record = await run(Chain(), "x", resources=scripted_manager({"fast": fast}), record=True)
    assert record.outputs == 1
    assert record.nodes["template"].inputs == {"q": "x"}
    assert record.nodes["llm"].inputs == {"template": "Q: x", "system": "S", "prompt": "Q: x"}
    assert record.nodes["get"].inputs == {"parse_json": {"a": 1}}
    assert record.order == ["template", "llm", "parse_json", "get"]


async def test_uploaded_graph_runs_with_a_dict_of_inputs() -> None:
    graph = load_graph(
        {
            "name": "g",
            "inputs": {"x": {}},
            "nodes": [
                {"id": "t", "op": "template", "text": "<{x}>"},
                {
                    "id": "k",
                    "op": "classify",
                    "source": "t",
                    "labels": {"big": "^<B"},
                    "default": "small",
                },
            ],
            "outputs": {"kind": "k", "text": "t"},
        }
    )
    assert await run(graph, {"x": "Big"}) == {"kind": "big", "text": "<Big>"}
    with pytest.raises(InputError, match="missing input 'x'"):
        await run(graph, {"y": 1})


async def test_cancelling_a_run_cancels_in_flight_calls() -> None:
    slow = ScriptedLLM(latency_s=10)
    manager = scripted_manager({"fast": slow, "smart": slow})
    task = asyncio.ensure_future(run(Diamond(), "A", "B", resources=manager))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert slow.in_flight == 0
    assert manager.endpoint("fast").gate.in_flight == 0


async def test_unbound_module_with_llm_calls_says_how_to_bind() -> None:
    with pytest.raises(ExecutionError, match="bind"):
        await LLMInference("fast")("q")
