"""The validation gate: a proposal is kept only if it beats the incumbent on the same items.

>>> decide([0.0, 1.0, 0.0, 1.0], [1.0, 1.0, 0.0, 1.0], min_delta=0.0).accepted
True
>>> decide([1.0, 1.0], [1.0, 1.0], min_delta=0.0).reason
'paired delta +0.0000 fails the gate (> 0 and >= 0)'
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from app.engine.optimization.stats import paired


@dataclass(frozen=True, slots=True)
class Decision:
    """Whether the candidate is kept, its paired gain with interval, and why."""

    accepted: bool
    delta: float
    low: float
    high: float
    reason: str


def decide(
    incumbent: Sequence[float], candidate: Sequence[float], *, min_delta: float,
    seed: int | str = 0,
) -> Decision:  # fmt: skip
    """Accept iff the mean paired delta (candidate - incumbent) is > 0 and >= ``min_delta``."""
    delta, low, high = paired(incumbent, candidate, seed=seed)
    if delta > 0 and delta >= min_delta:
        return Decision(True, delta, low, high, f"paired delta {delta:+.4f} over the incumbent")
    gate = f"> 0 and >= {min_delta:g}"
    return Decision(False, delta, low, high, f"paired delta {delta:+.4f} fails the gate ({gate})")
