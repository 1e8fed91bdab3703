"""What a run reports: one record per node, the outputs, and batch results."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from typing import Any


class NodeStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"  # its guard was false, or it needed a skipped value
    CANCELLED = "cancelled"  # an upstream node failed, or the run was cancelled


TERMINAL = frozenset(
    {NodeStatus.SUCCEEDED, NodeStatus.FAILED, NodeStatus.SKIPPED, NodeStatus.CANCELLED}
)


@dataclass(slots=True)
class LLMUsage:
    """The facts of a model call kept beside a node's output."""

    alias: str
    model: str
    input_tokens: int
    output_tokens: int
    latency_s: float
    finish_reason: str | None
    cost: float
    queued_s: float = 0.0  # waiting for a concurrency slot or rate budget
    cached_tokens: int = 0  # of input_tokens, those the provider read from its prompt cache


@dataclass(slots=True)
class NodeRecord:
    """How one node ended. ``inputs`` is filled when the run records (``record=True``), and for
    a failed node always."""

    node: str
    status: NodeStatus = NodeStatus.PENDING
    output: Any = None
    error: str | None = None
    error_type: str | None = None
    attempts: int = 0
    started_at: float | None = None
    ended_at: float | None = None
    usage: LLMUsage | None = None
    retries: list[str] = field(default_factory=list)  # why each retried attempt failed
    inputs: dict[str, Any] | None = None
    restored: bool = False  # taken from a checkpoint, not executed in this run
    replayed: bool = False  # its model call was answered from the response ledger

    @property
    def duration_s(self) -> float | None:
        if self.started_at is None or self.ended_at is None:
            return None
        return self.ended_at - self.started_at

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (used by checkpoints and the service)."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["status"] = self.status.value
        data["usage"] = None if self.usage is None else asdict(self.usage)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NodeRecord:
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        values["status"] = NodeStatus(data["status"])
        values["usage"] = LLMUsage(**data["usage"]) if data.get("usage") else None
        return cls(**values)


@dataclass(slots=True)
class RunResult:
    """Outputs by name and every node's record; ``failed`` lists failed node ids."""

    outputs: dict[str, Any]
    records: dict[str, NodeRecord]
    graph_hash: str
    inputs: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> list[str]:
        return [n for n, r in self.records.items() if r.status is NodeStatus.FAILED]

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def calls_saved(self) -> int:
        """Model calls this run answered from the response ledger."""
        return sum(r.replayed and not r.restored for r in self.records.values())

    def usage_totals(self) -> tuple[int, int, float]:
        """(input tokens, output tokens, cost) over every model call of the run."""
        calls = [r.usage for r in self.records.values() if r.usage is not None]
        return (
            sum(u.input_tokens for u in calls),
            sum(u.output_tokens for u in calls),
            sum(u.cost for u in calls),
        )


@dataclass(slots=True)
class ForwardRecord:
    """A recorded forward pass: graph, inputs, outputs and each node's inputs and output.

    Returned by ``run(..., record=True)``; the optimizer walks it backwards. ``parameters``
    maps graph parameter names to the module's ``Parameter`` objects (empty for a plain
    graph), and ``resources`` is the resource manager the run used (``None`` if unbound), so
    the backward pass calls its critic under the same limits.
    """

    graph: Any  # app.engine.graph.Graph; Any keeps this module free of import cycles
    inputs: dict[str, Any]
    outputs: Any
    nodes: dict[str, NodeRecord]
    order: list[str]
    parameters: dict[str, Any] = field(default_factory=dict)  # name -> Parameter
    resources: Any = None  # app.engine.resources.manager.ResourceManager

    def node_output(self, node: str) -> Any:
        return self.nodes[node].output


@dataclass(frozen=True, slots=True)
class FeedbackItem:
    """One piece of textual feedback on a value, with where it came from.

    ``target`` is the parameter or node it criticises, ``node`` the call site whose backward
    step wrote it (the ``llm`` node whose critic spoke, or the node it passed through), and
    ``example`` the training item (its index or id) whose forward pass it is about.

    >>> FeedbackItem("Name the unit.", target="extract", node="extract_a", example=3).node
    'extract_a'
    """

    text: str
    target: str
    node: str
    example: int | str | None = None
    score: float | None = None  # the loss score of the example, when known


@dataclass(slots=True)
class BatchResult:
    """One item of a batch: its position, input, and output or error."""

    index: int
    input: Any
    output: Any = None
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        return self.error is None
