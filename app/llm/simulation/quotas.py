"""Need sets in exact proportions: how many items of a generated set need each rule combination.

>>> sorted(map(sorted, joint_quota(4, {"X": 0.5})))
[[], [], ['X'], ['X']]
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import combinations


def joint_quota(n: int, shares: Mapping[str, float]) -> list[frozenset[str]]:
    """``n`` need sets: each combination of rules repeated ``n`` times its probability (rules
    needed independently with ``shares``), rounded by largest remainder so they sum to ``n``."""
    rules = list(shares)
    states = [frozenset(s) for k in range(len(rules) + 1) for s in combinations(rules, k)]
    exact = [_probability(state, shares) * n for state in states]
    counts = [int(value) for value in exact]
    by_remainder = sorted(range(len(states)), key=lambda i: counts[i] - exact[i])
    for i in by_remainder[: n - sum(counts)]:
        counts[i] += 1
    return [state for state, count in zip(states, counts, strict=True) for _ in range(count)]


def _probability(state: frozenset[str], shares: Mapping[str, float]) -> float:
    probability = 1.0
    for rule, share in shares.items():
        probability *= share if rule in state else 1.0 - share
    return probability
