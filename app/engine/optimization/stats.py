"""Scores of an evaluation: the mean, a seeded bootstrap interval, and the paired delta of
two versions scored on the same items.

The bootstrap is seeded, so the same scores always give the same interval.

>>> mean([1.0, 0.0, 1.0, 1.0])
0.75
>>> paired([0.0, 1.0, 0.0, 1.0], [1.0, 1.0, 1.0, 1.0])[0]
0.5
"""

from __future__ import annotations

import random
from collections.abc import Sequence

RESAMPLES = 1000
LEVEL = 0.95


def mean(scores: Sequence[float]) -> float:
    """The arithmetic mean; 0.0 for no scores."""
    return sum(scores) / len(scores) if scores else 0.0


def bootstrap_interval(
    scores: Sequence[float], *, seed: int | str = 0, resamples: int = RESAMPLES,
    level: float = LEVEL,
) -> tuple[float, float]:  # fmt: skip
    """The percentile bootstrap interval of the mean at ``level`` (``(m, m)`` for < 2 items).

    >>> bootstrap_interval([1.0, 1.0, 1.0])
    (1.0, 1.0)
    """
    if len(scores) < 2:
        return mean(scores), mean(scores)
    rng = random.Random(f"bootstrap:{seed}")
    n = len(scores)
    means = sorted(sum(rng.choices(scores, k=n)) / n for _ in range(resamples))
    tail = (1.0 - level) / 2.0
    low = means[int(tail * (resamples - 1))]
    high = means[round((1.0 - tail) * (resamples - 1))]
    return low, high


def paired(
    a_scores: Sequence[float], b_scores: Sequence[float], *, seed: int | str = 0,
    resamples: int = RESAMPLES, level: float = LEVEL,
) -> tuple[float, float, float]:  # fmt: skip
    """``(delta, low, high)``: the mean of ``b - a`` item by item, with its bootstrap interval.

    Both lists score the same items in the same order; ``ValueError`` otherwise.
    """
    if len(a_scores) != len(b_scores):
        raise ValueError(f"paired scores differ in length: {len(a_scores)} vs {len(b_scores)}")
    deltas = [b - a for a, b in zip(a_scores, b_scores, strict=True)]
    low, high = bootstrap_interval(deltas, seed=seed, resamples=resamples, level=level)
    return mean(deltas), low, high
