"""How an evaluation lives in a job: its stored spec and its items.

The job's ``spec`` column holds the request and what it resolved to (the graph version ids
and numbers, the dataset). Its items are the dataset's examples, once per version scored,
interleaved: example ``i`` under version slot ``v`` (0, or 0 and 1 when paired) is item
``i * versions + v``, so a paired evaluation ends each example under both versions side by
side. An item's input carries its slot and its example (``input``, ``expected``, ``id``).

>>> [item["version"] for item in items_of([{"input": {}, "expected": 1}] * 2, 2)]
[0, 1, 0, 1]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from app.engine.optimization.dataset import Example
from app.services.optimization.data import as_example
from app.services.optimization.spec import EvaluationSpec


@dataclass(frozen=True, slots=True)
class EvaluationPlan:
    """A checked request, the graph's id and the versions (ids and numbers, in slot order) it
    scores."""

    spec: EvaluationSpec
    graph_id: str
    version_ids: list[str]
    versions: list[int]
    dataset_id: str

    def to_json(self) -> dict[str, Any]:
        """What the job's ``spec`` column stores."""
        return {
            "request": self.spec.model_dump(mode="json"),
            "graph_id": self.graph_id,
            "version_ids": list(self.version_ids),
            "versions": list(self.versions),
            "dataset_id": self.dataset_id,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EvaluationPlan:
        spec = EvaluationSpec.model_validate(data["request"])
        ids, numbers = list(data["version_ids"]), list(data["versions"])
        return cls(spec, data["graph_id"], ids, numbers, data["dataset_id"])


def items_of(examples: Sequence[dict[str, Any]], versions: int) -> list[dict[str, Any]]:
    """The job items of ``examples`` (stored dataset items: ``input``, ``expected``, and
    ``item_id``), each once per version slot, interleaved."""
    return [
        {"version": slot, "example": _example(as_example(position, item))}
        for position, item in enumerate(examples)
        for slot in range(versions)
    ]


def _example(example: Example) -> dict[str, Any]:
    return {"id": example.id, "input": example.input, "expected": example.expected}


def example_of(item_input: dict[str, Any]) -> tuple[int, Example]:
    """The version slot and the example of a job item's input."""
    example = item_input["example"]
    return int(item_input["version"]), Example(example["input"], example["expected"], example["id"])
