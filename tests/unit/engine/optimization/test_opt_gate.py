"""The gate's rule: keep a candidate iff its mean paired gain is > 0 and >= min_delta."""

from __future__ import annotations

import pytest

from app.engine.optimization.gate import decide

SEED = [0.0, 1.0, 0.0, 1.0]


@pytest.mark.parametrize(
    ("candidate", "min_delta", "accepted"),
    [
        ([1.0, 1.0, 0.0, 1.0], 0.0, True),  # +0.25
        ([1.0, 1.0, 0.0, 1.0], 0.25, True),  # exactly min_delta
        ([1.0, 1.0, 0.0, 1.0], 0.26, False),
        ([1.0, 0.0, 1.0, 0.0], 0.0, False),  # same mean, different items: no gain
        ([0.0, 0.0, 0.0, 1.0], 0.0, False),  # a regression
        ([1.0, 1.0, 0.0, 1.0], -1.0, True),
        ([0.0, 1.0, 0.0, 1.0], -1.0, False),  # a negative min_delta never admits no gain
    ],
)
def test_the_gate_rule(candidate: list[float], min_delta: float, accepted: bool) -> None:
    assert decide(SEED, candidate, min_delta=min_delta).accepted is accepted


def test_a_decision_reports_the_paired_interval() -> None:
    decision = decide(SEED, [1.0, 1.0, 1.0, 1.0], min_delta=0.0, seed=4)
    assert decision.delta == 0.5
    assert decision.low <= 0.5 <= decision.high
    assert "+0.5000" in decision.reason
