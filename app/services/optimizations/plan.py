"""How an optimization run lives in a job: its stored spec, and its data from the datasets.

The job's ``spec`` column holds the checked request and what it resolved to (the graph, the
version trained from). The job has one item, the run itself. The data is read again from the
(immutable) datasets when a runner opens the run: separate train/val/test datasets, or one
dataset cut by the request's seeded :func:`~app.services.optimization.split.split_indices`, so
every runner sees the same examples in the same order.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.engine.optimization.dataset import Example
from app.services.optimization.checks import Sizes
from app.services.optimization.data import dataset_items, examples_at
from app.services.optimization.projection import Projection
from app.services.optimization.spec import OptimizationSpec
from app.services.optimization.split import split_indices

OPTIMIZATION = "optimization"


@dataclass(frozen=True, slots=True)
class OptimizationPlan:
    """A checked request, the graph's id, the version (id and number) it trains from, the
    sizes of its data and its dry-run projection (each ``None`` in a plan stored before it
    was kept)."""

    spec: OptimizationSpec
    graph_id: str
    version_id: str
    version: int
    sizes: Sizes | None = None
    projection: Projection | None = None

    def to_json(self) -> dict[str, Any]:
        """What the job's ``spec`` column stores."""
        return {
            "request": self.spec.model_dump(mode="json"),
            "graph_id": self.graph_id,
            "version_id": self.version_id,
            "version": self.version,
            "sizes": None if self.sizes is None else asdict(self.sizes),
            "projection": None if self.projection is None else self.projection.to_json(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> OptimizationPlan:
        spec = OptimizationSpec.model_validate(data["request"])
        sizes = None if data.get("sizes") is None else Sizes(**data["sizes"])
        stored = data.get("projection")
        projection = None if stored is None else Projection.from_json(stored)
        version = int(data["version"])
        return cls(spec, data["graph_id"], data["version_id"], version, sizes, projection)


@dataclass(frozen=True, slots=True)
class RunData:
    """The run's examples: ``test`` is empty when the request has no test data."""

    train: list[Example]
    val: list[Example]
    test: list[Example]


async def run_data(session: AsyncSession, spec: OptimizationSpec) -> RunData:
    """The train, val and test examples of ``spec``, read from its datasets."""
    if spec.dataset is not None and spec.split is not None:
        items = await dataset_items(session, spec.dataset)
        parts = split_indices(len(items), spec.split)
        return RunData(*(examples_at(items, part) for part in (parts.train, parts.val, parts.test)))
    found = [await _whole(session, dataset_id) for dataset_id in (spec.train, spec.val, spec.test)]
    return RunData(*found)


async def _whole(session: AsyncSession, dataset_id: str | None) -> list[Example]:
    if dataset_id is None:
        return []
    items = await dataset_items(session, dataset_id)
    return examples_at(items, range(len(items)))
