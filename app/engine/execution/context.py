"""Everything a run needs besides the graph and its inputs."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from app.engine.clock import Clock, MonotonicClock
from app.engine.execution.observer import Observer

if TYPE_CHECKING:
    from app.engine.checkpoint import CheckpointSession
    from app.engine.resources.manager import ResourceManager


@dataclass(slots=True)
class RunContext:
    """Resolved settings for one run (or each item of a batch)."""

    manager: ResourceManager | None = None
    max_retries: int | None = None
    timeout_s: float | None = None
    priority: int = 0
    record: bool = False
    observers: tuple[Observer, ...] = ()
    tools: Mapping[str, Callable[..., Any]] = field(default_factory=dict)
    checkpoint: CheckpointSession | None = None
    label: str = "run"
    clock: Clock = field(default_factory=MonotonicClock)
    rng: random.Random = field(default_factory=random.Random)
