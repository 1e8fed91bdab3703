"""A run stopped at human nodes: what ``run()`` returns then, and ``resume`` to go on.

    pending = await run(graph, {"text": "memo"})
    if isinstance(pending, Pending):
        print(pending.waits[0].prompt)
        outputs = await resume(pending, {"ok": {"approve": True}})

The nodes finished before the stop are kept in the state and never run again; an answer is
checked against its node's schema before anything runs (``InputError`` naming the field).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from app.engine.errors import InputError
from app.engine.graph.answer_schema import answer_errors
from app.engine.graph.model import HumanNode
from app.engine.records import NodeRecord, NodeStatus, RunResult

AWAITING = "AwaitingInput"


@dataclass(frozen=True, slots=True)
class HumanWait:
    """One human node a run stopped at, with its rendered prompt and answer schema."""

    node: str
    prompt: str
    schema: dict[str, Any] | bool


@dataclass(frozen=True)
class Pending:
    """A run waiting for answers: give them to :func:`resume`."""

    target: Any
    inputs: dict[str, Any]
    settings: dict[str, Any]
    waits: tuple[HumanWait, ...]
    finished: dict[str, NodeRecord] = field(default_factory=dict)


def pending_of(
    target: Any, settings: dict[str, Any], result: RunResult, humans: dict[str, HumanNode]
) -> Pending | None:
    """The pending state of ``result``, or ``None`` when no human node waits."""
    records = result.records.values()
    waits = tuple(
        HumanWait(r.node, r.error or "", humans[r.node].schema_)
        for r in records
        if r.error_type == AWAITING and r.node in humans
    )
    if not waits:
        return None
    finished = {r.node: r for r in records if r.status is NodeStatus.SUCCEEDED}
    return Pending(target, dict(result.inputs), settings, waits, finished)


def answered(state: Pending, answers: Mapping[str, Any]) -> dict[str, NodeRecord]:
    """``answers`` (node -> value) checked, as finished nodes; ``InputError`` otherwise."""
    schemas = {w.node: w.schema for w in state.waits}
    given: dict[str, NodeRecord] = {}
    for node, value in answers.items():
        if node not in schemas:
            raise InputError(f"no human node {node!r} waits (waiting: {sorted(schemas)})")
        errors = answer_errors(schemas[node], value)
        if errors:
            where, message = errors[0]
            raise InputError(f"the answer to node {node!r} is invalid: {where} {message}")
        given[node] = NodeRecord(node, NodeStatus.SUCCEEDED, output=value)
    return given
