"""``ExecutionSettings(spans=...)``: the engine's scopes around nodes and call attempts.

The backend here records what the engine asks of it, and keeps its current scope in a context
variable, as OpenTelemetry does: the provider sees the attempt's scope as current while it is
called, which is what puts the attempt's ``traceparent`` on the HTTP request.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from app.engine import (
    ExecutionSettings,
    LLMRequest,
    LLMUsage,
    NodeRecord,
    TransientLLMError,
    load_graph,
    run,
)
from app.engine.testing import ScriptedLLM, scripted_manager

current: ContextVar[str | None] = ContextVar("current_scope", default=None)
GRAPH = {
    "name": "g",
    "inputs": {"doc": {"type": "string"}},
    "nodes": [
        {"id": "facts", "op": "llm", "alias": "fast", "prompt": "{doc}"},
        {"id": "summary", "op": "template", "text": "S: {facts}"},
        {"id": "judge", "op": "llm", "alias": "fast", "prompt": "{summary}", "temperature": 0.5},
    ],
    "outputs": {"out": "judge"},
}


class Recorder:
    """A tracing backend that writes down every scope and end it is told of."""

    def __init__(self) -> None:
        self.seen: list[tuple[Any, ...]] = []

    @contextmanager
    def node(self, run: str, record: NodeRecord, op: str, alias: str | None) -> Iterator[None]:
        token = current.set(f"node {record.node}")
        try:
            yield
            self.seen.append(("node", record.node, op, alias, record.status.value))
        finally:
            current.reset(token)

    @contextmanager
    def attempt(self, node: str, alias: str, request: LLMRequest, attempt: int) -> Iterator[Any]:
        token = current.set(f"attempt {node} {attempt}")
        answer = _Answer()
        try:
            yield answer
        except Exception as exc:
            self.seen.append(("attempt", node, attempt, type(exc).__name__))
            raise
        else:
            self.seen.append(("attempt", node, attempt, answer.tokens, request.temperature))
        finally:
            current.reset(token)

    def node_finished(self, run: str, record: NodeRecord, op: str, alias: str | None) -> None:
        self.seen.append(("finished", record.node, current.get()))


class _Answer:
    tokens: int | None = None

    def answered(self, usage: LLMUsage) -> None:
        self.tokens = usage.input_tokens + usage.output_tokens


async def test_each_model_node_and_attempt_has_a_scope_current_during_its_call() -> None:
    calls: list[str | None] = []
    failed_once: list[bool] = []

    def script(request: LLMRequest) -> Any:
        calls.append(current.get())
        if request.prompt == "x" and not failed_once:
            failed_once.append(True)
            return TransientLLMError("HTTP 503", status_code=503)
        return f"<{request.prompt}>"

    manager = scripted_manager({"fast": ScriptedLLM(script)}, max_retries=2)
    recorder = Recorder()
    with ExecutionSettings(spans=recorder):
        out = await run(load_graph(GRAPH), {"doc": "x"}, resources=manager)

    assert out == {"out": "<S: <x>>"}
    assert calls == ["attempt facts 1", "attempt facts 2", "attempt judge 1"]
    seen = recorder.seen
    assert ("attempt", "facts", 1, "TransientLLMError") in seen
    attempts = [s[:3] for s in seen if s[0] == "attempt"]
    assert attempts[1:] == [("attempt", "facts", 2), ("attempt", "judge", 1)]
    assert ("node", "facts", "llm", "fast", "succeeded") in seen
    assert ("node", "judge", "llm", "fast", "succeeded") in seen
    (judge,) = [s for s in seen if s[:2] == ("attempt", "judge")]
    assert judge[3] > 0  # answered: its tokens
    assert judge[4] == 0.5  # the request as sent, with its temperature
    # a model node ends inside its own scope; the template outside any
    assert ("finished", "facts", "node facts") in seen
    assert ("finished", "summary", None) in seen
