"""What the dashboard's optimization pages show: the tenant's runs and evaluations with their
state and score, and one run with its score curve's points and the id of its newest event
(where the page's live stream starts). Read from the same services as the API."""

from __future__ import annotations

from dataclasses import dataclass
from statistics import fmean
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.repositories import events as events_repo
from app.services.optimizations.view import OptimizationView
from app.services.requests import dashboard_evaluations, optimizations
from app.services.requests.dashboard_evaluations import ListedEvaluation

Point = tuple[int, float, bool]  # (step, score, accepted)


@dataclass(frozen=True, slots=True)
class RunsPage:
    """The tenant's newest optimization runs and evaluations (each with its mean scores)."""

    runs: list[OptimizationView]
    evaluations: list[ListedEvaluation]


@dataclass(frozen=True, slots=True)
class RunPage:
    """One run, its curve's points and its newest event's id."""

    run: OptimizationView
    points: list[Point]
    last_event_id: int


async def runs_page(session: AsyncSession, tenant_id: str, limit: int) -> RunsPage:
    """The ``limit`` newest runs and evaluations of the tenant: a fixed number of queries,
    whatever the number of rows."""
    runs, _ = await optimizations.listing(session, tenant_id, limit, None)
    listed = await dashboard_evaluations.evaluations_page(session, tenant_id, limit, None)
    return RunsPage(runs, listed.evaluations)


async def run_page(session: AsyncSession, tenant_id: str, run_id: str) -> RunPage:
    """Everything the run's page shows; ``NotFound`` for another tenant's run."""
    run = await optimizations.status(session, tenant_id, run_id)
    last = await events_repo.last_event_id(session, run_id)
    return RunPage(run, curve_points(run.steps), last)


def curve_points(steps: list[dict[str, Any]]) -> list[Point]:
    """(step, score, accepted) of each step with a score: the incumbent's gate score after
    it, else its batch's mean score."""
    points = []
    for step in steps:
        score = step["score"] if step["score"] is not None else _mean(step["scores"])
        if score is not None:
            points.append((int(step["step"]), float(score), bool(step["accepted"])))
    return points


def _mean(scores: list[float]) -> float | None:
    return fmean(scores) if scores else None
