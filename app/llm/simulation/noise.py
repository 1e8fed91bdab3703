"""Seeded transport noise of the simulated roles: 429/500 schedules and latency.

Variants after the role's name (any role, combinable with the others):

- ``:throttled``: a hashed ``THROTTLED_SHARE`` of requests first answer 429, asking to retry
  after ``RETRY_AFTER_S``;
- ``:errors``: a hashed ``ERROR_SHARE`` of requests first answer 500;
- ``:slow``: every request waits a latency in ``[0, SLOW_MAX_S)`` chosen by its hash.

Attempt ``n`` of a request fails when ``n < MAX_FAILURES`` and a hash of the request and
``n`` falls in a share, so a retry can fail again but the third attempt always succeeds.
Whoever serves the role counts the attempts of each request (:class:`Attempts`); the reply
that finally comes is the one without the variant, since the noise never reaches the content.

>>> fault("sim-task", "", "hi", 0) is None
True
>>> attempts = Attempts()
>>> attempts.next("sim-task", "", "hi"), attempts.next("sim-task", "", "hi")
(0, 1)
"""

from __future__ import annotations

import hashlib

from app.llm.simulation.hashing import fraction
from app.llm.simulation.roles import parse_model, plain_name

THROTTLED_SHARE = 0.02  # small: every 429 halves the caller's rate
ERROR_SHARE = 0.1
MAX_FAILURES = 2
RETRY_AFTER_S = 0.01
SLOW_MAX_S = 0.05

_SCHEDULES = (("throttled", 429, THROTTLED_SHARE), ("errors", 500, ERROR_SHARE))


def fault(model: str, system: str, prompt: str, attempt: int) -> int | None:
    """The status attempt ``attempt`` (from 0) of a request answers instead of a reply.

    >>> fault("sim-critic:errors", "", "x", MAX_FAILURES) is None
    True
    """
    variants = _variants(model)
    if attempt >= MAX_FAILURES or not variants:
        return None
    draw = fraction("fault", plain_name(model), system, prompt, str(attempt))
    for variant, status, share in _SCHEDULES:
        if variant in variants:
            if draw < share:
                return status
            draw -= share
    return None


def scheduled(model: str) -> bool:
    """Whether ``model`` answers some requests with an error first (so attempts count).

    >>> scheduled("sim-task:throttled"), scheduled("sim-task:slow")
    (True, False)
    """
    return any(variant in _variants(model) for variant, _, _ in _SCHEDULES)


def latency_s(model: str, system: str, prompt: str) -> float:
    """The seeded extra latency of a request (0 without ``:slow``).

    >>> 0.0 <= latency_s("sim-task:slow", "", "x") < SLOW_MAX_S, latency_s("sim-task", "", "x")
    (True, 0.0)
    """
    if "slow" not in _variants(model):
        return 0.0
    return SLOW_MAX_S * fraction("slow", plain_name(model), system, prompt)


class Attempts:
    """How many times each request was received, by a digest of its model and text."""

    def __init__(self) -> None:
        self._seen: dict[bytes, int] = {}

    def next(self, model: str, system: str, prompt: str) -> int:
        """The number of this attempt of the request (0 the first time), counted."""
        key = hashlib.blake2b("\x1f".join((model, system, prompt)).encode(), digest_size=16)
        digest = key.digest()
        count = self._seen.get(digest, 0)
        self._seen[digest] = count + 1
        return count


def _variants(model: str) -> frozenset[str]:
    parsed = parse_model(model)
    return frozenset() if parsed is None else parsed[1]
