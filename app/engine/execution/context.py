"""Everything the runs of one call or batch share besides the graph: resolved settings."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from app.engine.clock import Clock, MonotonicClock
from app.engine.execution.limits import OutputLimits
from app.engine.execution.observer import Observer
from app.engine.execution.spans import RunSpans
from app.engine.resources.fairness import NO_FLOW, Flow

if TYPE_CHECKING:
    from app.engine.ledger.policy import Ledger
    from app.engine.resources.manager import ResourceManager

_CLOCK = MonotonicClock()
_LIMITS = OutputLimits()
_RNG = random.Random()  # backoff jitter; seeding a generator per run would cost more than the run


@dataclass(slots=True)
class RunContext:
    """Resolved settings for a run, or for every item of a batch."""

    manager: ResourceManager | None = None
    max_retries: int | None = None
    timeout_s: float | None = None
    priority: int = 0
    flow: Flow = NO_FLOW
    record: bool = False
    observers: tuple[Observer, ...] = ()
    spans: RunSpans | None = None
    tools: Mapping[str, Callable[..., Any]] = field(default_factory=dict)
    limits: OutputLimits = _LIMITS
    clock: Clock = _CLOCK
    rng: random.Random = _RNG
    ledger: Ledger | None = None
