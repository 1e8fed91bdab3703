"""What a training run did, step by step: JSON-ready records the service stores and shows.

>>> history = TrainingHistory(best_values={"p": "Count."}, best_score=0.5)
>>> TrainingHistory.from_dict(history.to_dict()) == history
True
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class StopReason(StrEnum):
    """Why a training run ended."""

    MAX_EPOCHS = "max_epochs"
    EARLY_STOPPED = "early_stopped"  # patience ran out
    TARGET_REACHED = "target_reached"
    BUDGET_EXHAUSTED = "budget_exhausted"
    STALLED = "stalled"  # no step yielded usable feedback or a parseable proposal
    ERROR = "error"


class TrainingEvent(StrEnum):
    """The kinds of event a run reports through ``on_event(kind, data)``, in run order."""

    RUN_STARTED = "run_started"
    STEP_STARTED = "step_started"
    BATCH_SCORED = "batch_scored"
    FEEDBACK = "feedback"  # per parameter, with counts by call site
    PROPOSAL = "proposal"  # with its diff and edit ratio
    ACCEPTED = "accepted"  # with the paired delta, its interval and the reason
    REJECTED = "rejected"
    VALIDATED = "validated"  # the gate's (or the baseline's) validation score
    BUDGET = "budget"  # usage by role after each step, and the cap that stopped a run
    FINISHED = "finished"


@dataclass(slots=True)
class ProposalRecord:
    """One proposal of a step and what the gate made of it."""

    parameter: str
    old: str
    new: str
    edit_ratio: float
    feedback_count: int
    diff: str


@dataclass(slots=True)
class StepRecord:
    """One training step.

    ``scores`` are the batch's loss scores by example id (in batch order); ``feedback``
    counts the items each parameter received, by call site; ``rejections`` lists the
    parameters that got no proposal and why; ``errors`` the failures met (forward passes,
    critic and optimizer calls); ``delta`` (with ``low``/``high``) is the
    paired gain of the proposals over the incumbent on the gate's items; ``parameters`` is
    the snapshot after the step (the proposals kept only if ``accepted``); ``calls`` counts
    the calls the step made by role (empty in a history saved before steps counted them).
    """

    epoch: int
    step: int
    examples: list[int | str]
    scores: list[float]
    feedback: dict[str, dict[str, int]] = field(default_factory=dict)
    proposals: list[ProposalRecord] = field(default_factory=list)
    rejections: list[dict[str, str]] = field(default_factory=list)
    accepted: bool = False
    reason: str = ""
    delta: float | None = None
    low: float | None = None
    high: float | None = None
    score: float | None = None  # the incumbent's gate score after the step
    parameters: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    unparsed: int = 0  # critic replies that never parsed
    calls: dict[str, int] = field(default_factory=dict)

    @property
    def usable(self) -> bool:
        """Whether the step produced at least one proposal."""
        return bool(self.proposals)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StepRecord:
        values = dict(data)
        values["proposals"] = [ProposalRecord(**p) for p in data.get("proposals", [])]
        return cls(**values)


@dataclass(slots=True)
class TrainingHistory:
    """Every step, the best values with their score, the stop reason and usage per role.

    ``baseline`` is the seed values' gate score; ``error`` the root error text of a run
    that stalled or failed.
    """

    steps: list[StepRecord] = field(default_factory=list)
    baseline: float | None = None
    best_values: dict[str, str] = field(default_factory=dict)
    best_score: float | None = None
    best_step: int | None = None  # None: the seed values are best
    stop_reason: StopReason | None = None
    error: str | None = None
    usage: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def accepted(self) -> list[StepRecord]:
        return [step for step in self.steps if step.accepted]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["stop_reason"] = None if self.stop_reason is None else self.stop_reason.value
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainingHistory:
        values = dict(data)
        values["steps"] = [StepRecord.from_dict(step) for step in data.get("steps", [])]
        reason = data.get("stop_reason")
        values["stop_reason"] = None if reason is None else StopReason(reason)
        return cls(**values)
