"""The shared limiter's state as ``GET /v1/endpoints`` shows it: read from the store.

The HTTP process reads what every process holds, so the view shows the runner's and the
workers' leases too::

    shared = await shared_states(store, ["fast", "smart"])
    shared["fast"]["slots"]["holders"]  # {"host-4242": 3}
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from app.engine.resources.shared import SharedRateStore
from app.engine.resources.store_state import BudgetState, StoreSnapshot


async def shared_states(store: SharedRateStore, aliases: Iterable[str]) -> dict[str, Any]:
    """Each alias's shared state, as JSON-ready dicts (see :func:`shared_view`)."""
    names = list(aliases)
    found = await asyncio.gather(*(store.snapshot(alias) for alias in names))
    now = datetime.now(UTC)
    return {alias: shared_view(seen, now) for alias, seen in zip(names, found, strict=True)}


def shared_view(seen: StoreSnapshot, now: datetime) -> dict[str, Any]:
    """One alias's snapshot as JSON: budgets, learned rates, pause, slots by process.

    ``source`` is ``store``, or ``local_fallback`` when the store did not answer and the
    figures are this process's local share.
    """
    blocked = seen.blocked_for_s
    return {
        "source": "local_fallback" if seen.fallback else "store",
        "requests": _budget(seen.requests),
        "tokens": _budget(seen.tokens),
        "learned_rpm": seen.learned_rpm,
        "learned_tpm": seen.learned_tpm,
        "blocked_for_s": round(blocked, 3),
        "blocked_until": (now + timedelta(seconds=blocked)).isoformat() if blocked else None,
        "slots": {
            "limit": seen.max_concurrent,
            "used": seen.slots_used,
            "holders": dict(sorted(seen.leases.items())),
        },
    }


def _budget(state: BudgetState) -> dict[str, float] | None:
    """``None`` for an unlimited budget."""
    if state.limit_per_minute is None:
        return None
    return {
        "limit_per_minute": state.limit_per_minute,
        "capacity": round(state.capacity, 3),
        "used": round(state.used, 3),
        "available": round(state.available, 3),
    }
