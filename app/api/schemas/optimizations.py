"""Optimization API models. The request body is
:class:`~app.services.optimization.spec.OptimizationSpec` (read from the raw JSON, so its
field paths name the request's own fields)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class BestVersionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    version: int = Field(description="the graph version holding the best values")
    score: float | None = Field(description="its mean validation score")
    low: float | None = Field(description="the 95% bootstrap interval of that mean")
    high: float | None


class CallsOutlookOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    spent: int = Field(description="calls made so far (the test's included)")
    projected_total: int = Field(
        description="spent, plus the steps left at the finished steps' calls per step, plus "
        "the baseline and test not yet run"
    )
    upper_bound: int = Field(description="the same with every step left proposing")


class StepCountsOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    finished: int
    left: int = Field(description="steps left in the epochs (0 once the run ended)")
    proposed: int = Field(description="finished steps that made a proposal")


class LiveProjectionOut(BaseModel):
    """What the run will spend, projected from what its finished steps spent."""

    model_config = ConfigDict(from_attributes=True)

    calls: CallsOutlookOut
    by_role: dict[str, CallsOutlookOut]
    steps: StepCountsOut


class OptimizationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    state: str = Field(description="queued, running, succeeded, failed or cancelled")
    graph_id: str
    version: int = Field(description="the version the run trains from")
    stop_reason: str | None = Field(
        description="max_epochs, early_stopped, target_reached, budget_exhausted, stalled, error"
    )
    error: str | None = Field(description="the root error of a run that stalled or failed")
    step: int = Field(description="training steps finished")
    roles: dict[str, dict[str, float]] = Field(description="calls, tokens and cost per role")
    best: BestVersionOut
    steps: list[dict[str, Any]] = Field(
        description="every step: proposals with diff and edit ratio, paired delta, accepted, why"
    )
    test: dict[str, Any] | None = Field(description="the best values scored once on the test split")
    projection: LiveProjectionOut | None = Field(
        default=None, description="the live projection of its calls (null in the listing)"
    )
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class OptimizationPage(BaseModel):
    items: list[OptimizationOut]
    next: str | None


class SpendOut(BaseModel):
    calls: int
    tokens: int
    cost: float | None = Field(description="null when unknown (no earlier run priced it)")


class ExpectedOut(SpendOut):
    """The spend expected: the upper bound scaled per role by the median fraction of their own
    upper bound the tenant's last comparable finished runs of the graph spent."""

    basis: str = Field(description="history (earlier runs), or upper_bound (none: the bound)")
    runs: int = Field(description="the earlier runs it rests on (at most 5)")
    roles: dict[str, SpendOut]


class ProjectionOut(BaseModel):
    """A dry run's answer: steps, calls and tokens per role and in all (an upper bound, what
    the budget check uses) and the spend expected; nothing was stored."""

    dry_run: bool = True
    steps: int
    roles: dict[str, dict[str, int]]
    total: dict[str, int]
    expected: ExpectedOut
