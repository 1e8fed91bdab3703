"""An evaluation's result from its scored items: per version the engine's summary (mean, n,
failures, seeded bootstrap interval), and for two versions the paired delta (b - a). A partial
result (a cancelled evaluation's) is over the examples scored under every version.

>>> result = result_of([7], [(0, 1.0, None), (1, 0.0, "count: timed out")], seed=0)
>>> (result.versions[0].mean, result.versions[0].failures, result.paired)
(0.5, 1, None)
>>> result_of([7, 8], [(0, 1.0, None), (1, 1.0, None), (2, 0.0, None)], seed=0).versions[0].n
1
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from app.engine.optimization.dataset import Example
from app.engine.optimization.evaluate import Scored, summarize
from app.engine.optimization.stats import paired

# (item index, score, error): one scored job item, as stored
ScoredItem = tuple[int, float, str | None]


@dataclass(frozen=True, slots=True)
class VersionResult:
    version: int
    mean: float
    n: int
    failures: int
    low: float
    high: float


@dataclass(frozen=True, slots=True)
class PairedDelta:
    """The mean of ``b - a`` over the examples, with its bootstrap interval."""

    delta: float
    low: float
    high: float


@dataclass(frozen=True, slots=True)
class EvaluationResult:
    versions: list[VersionResult]
    paired: PairedDelta | None
    partial: bool = False


def result_of(
    versions: Sequence[int], items: Sequence[ScoredItem], *, seed: int, partial: bool = False
) -> EvaluationResult | None:
    """The result of items laid out as :mod:`~app.services.evaluations.layout` says, over
    the examples scored under every version; ``None`` when there is none."""
    items = _whole_examples(len(versions), items)
    if not items:
        return None
    by_slot = _by_slot(len(versions), items)
    summaries = [summarize(scored, seed=seed) for scored in by_slot]
    shown = [
        VersionResult(number, s.mean, s.n, s.failures, s.low, s.high)
        for number, s in zip(versions, summaries, strict=True)
    ]
    delta = None
    if len(summaries) == 2:
        delta = PairedDelta(*paired(summaries[0].scores, summaries[1].scores, seed=seed))
    return EvaluationResult(shown, delta, partial)


def _whole_examples(slots: int, items: Sequence[ScoredItem]) -> list[ScoredItem]:
    """The items of the examples that have an item under every version slot."""
    found: dict[int, int] = {}
    for index, _, _ in items:
        found[index // slots] = found.get(index // slots, 0) + 1
    return [item for item in items if found[item[0] // slots] == slots]


def _by_slot(slots: int, items: Sequence[ScoredItem]) -> list[list[Scored]]:
    by_slot: list[list[Scored]] = [[] for _ in range(slots)]
    for index, score, error in sorted(items):
        by_slot[index % slots].append(Scored(Example(None, None, index), score, None, error))
    return by_slot
