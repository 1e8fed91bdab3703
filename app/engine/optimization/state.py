"""``TrainerState``: everything a resumed run needs, as JSON.

The service persists it after every step; ``Trainer.resume(state, ...)`` continues from it
and, with the same seed and inputs, ends with the same history as an uninterrupted run.

>>> state = TrainerState(values={"p": "Count."})
>>> TrainerState.from_json(state.to_json()) == state
True
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from typing import Any

from app.engine.optimization.budget import Meter, Usage
from app.engine.optimization.history import TrainingHistory
from app.engine.optimization.roles import Role


@dataclass(slots=True)
class TrainerState:
    """Progress of a training run.

    ``epoch`` and ``cursor`` (items of the epoch already used) place the next batch;
    ``step`` counts finished steps; ``values`` are the parameters' current texts and
    ``best_scores`` the incumbent's gate scores, item by item; ``patience`` counts steps
    since the last accepted one and ``unusable`` steps without a proposal while no step had
    one; ``usage`` and ``wall_s`` are the meter's counters; ``fingerprint`` identifies the
    run's schedule, datasets and parameters, so a state is never resumed by another run.
    """

    epoch: int = 0
    cursor: int = 0
    step: int = 0
    started: bool = False
    finished: bool = False
    values: dict[str, str] = field(default_factory=dict)
    best_scores: list[float] = field(default_factory=list)
    patience: int = 0
    unusable: int = 0
    history: TrainingHistory = field(default_factory=TrainingHistory)
    usage: dict[str, dict[str, float]] = field(default_factory=dict)
    wall_s: float = 0.0
    fingerprint: str = ""  # of the schedule, datasets and parameter names it was saved by

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["history"] = self.history.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainerState:
        values = dict(data)
        values["history"] = TrainingHistory.from_dict(data.get("history", {}))
        return cls(**values)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> TrainerState:
        return cls.from_dict(json.loads(text))

    def save_meter(self, meter: Meter) -> None:
        """Copy the meter's counters into the state."""
        self.usage = {role.value: usage.to_dict() for role, usage in meter.by_role.items()}
        self.wall_s = meter.wall_s

    def spent(self) -> dict[Role, Usage]:
        """The meter's counters saved in the state, by role."""
        return {Role(role): Usage(**usage) for role, usage in self.usage.items()}  # type: ignore[arg-type]

    def load_meter(self, meter: Meter) -> None:
        """Give a fresh meter the counters saved in the state."""
        meter.by_role.update(self.spent())
        meter.elapsed_before = self.wall_s
