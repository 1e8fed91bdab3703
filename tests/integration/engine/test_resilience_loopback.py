"""Failures, retries and checkpoints against the fake server."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from app.engine import (
    CheckpointError,
    ExecutionError,
    InferenceModule,
    LLMInference,
    NodeStatus,
    run,
)
from tests.support.engine import MakeManager
from tests.support.fake_llm import FakeLLM


class Fan(InferenceModule):
    """``bad`` feeds ``after``; ``good`` is independent."""

    def __init__(self) -> None:
        super().__init__()
        self.bad = LLMInference("fast", system_prompt="BAD")
        self.good = LLMInference("fast", system_prompt="GOOD")
        self.after = LLMInference("fast", system_prompt="AFTER")

    def forward(self, x: str) -> Any:
        return {"good": self.good(x), "after": self.after(self.bad(x))}


async def test_persistent_failure_cancels_descendants_and_keeps_independent_outputs(
    fake_llm: FakeLLM, endpoints: MakeManager
) -> None:
    fake_llm.configure(rules=[{"match": "BAD", "status": 400}])
    with pytest.raises(ExecutionError) as caught:
        await run(Fan(), "x", resources=endpoints(fast={}))
    error = caught.value
    assert [(f.node, f.error_type) for f in error.failures] == [("bad", "PermanentLLMError")]
    assert "bad" in str(error)
    assert error.outputs["good"].startswith("reply[")
    assert error.outputs["after"] is None
    assert error.result.records["after"].status is NodeStatus.CANCELLED
    assert [e["system"] for e in fake_llm.log()].count("AFTER") == 0


async def test_transient_failures_are_retried_and_succeed(
    fake_llm: FakeLLM, endpoints: MakeManager
) -> None:
    fake_llm.configure(rules=[{"match": "BAD", "status": 503, "times": 2}])
    out = await run(Fan(), "x", resources=endpoints(fast={"max_retries": 3}), record=True)
    assert out.nodes["bad"].attempts == 3
    assert out.outputs["after"].startswith("reply[")
    statuses = [e["status"] for e in fake_llm.log() if e["system"] == "BAD"]
    assert statuses == [503, 503, 200]


class Chain(InferenceModule):
    def __init__(self) -> None:
        super().__init__()
        self.first = LLMInference("fast", system_prompt="FIRST")
        self.second = LLMInference("fast", system_prompt="SECOND")
        self.third = LLMInference("fast", system_prompt="THIRD")

    def forward(self, x: str) -> Any:
        return self.third(self.second(self.first(x)))


async def test_stopped_run_resumes_from_checkpoint_without_repeating_calls(
    fake_llm: FakeLLM, endpoints: MakeManager, tmp_path: Path
) -> None:
    fake_llm.configure(rules=[{"match": "THIRD", "hang": True}])
    manager = endpoints(fast={})
    task = asyncio.ensure_future(run(Chain(), "x", resources=manager, checkpoint=tmp_path))
    for _ in range(200):
        if any(e["system"] == "THIRD" for e in fake_llm.log()):
            break
        await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    fake_llm.configure()
    fake_llm.reset()
    out = await run(Chain(), "x", resources=manager, checkpoint=tmp_path)
    assert out.startswith("reply[")
    assert [e["system"] for e in fake_llm.log()] == ["THIRD"]


async def test_checkpoint_of_another_graph_is_refused(
    fake_llm: FakeLLM, endpoints: MakeManager, tmp_path: Path
) -> None:
    manager = endpoints(fast={})
    await run(Chain(), "x", resources=manager, checkpoint=tmp_path)
    with pytest.raises(CheckpointError, match="written for graph"):
        await run(Fan(), "x", resources=manager, checkpoint=tmp_path)
    with pytest.raises(CheckpointError, match="different inputs"):
        await run(Chain(), "y", resources=manager, checkpoint=tmp_path)
