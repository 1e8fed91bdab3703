"""What the dashboard's evaluation pages show: the tenant's evaluations with their mean score
per version (one statement for the whole page), and one evaluation with its result, spend by
role and a page of its scored items. Read from the same services as the API."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import JobItem
from app.db.repositories import evaluation_scores
from app.db.repositories import jobs as jobs_repo
from app.lifecycle import JobStatus
from app.services.requests import evaluations
from app.services.requests.evaluations import EvaluationView

# An evaluation's scores are shown once it ended with some: as its result counts them.
ENDED_SCORED = frozenset({JobStatus.COMPLETED.value, JobStatus.CANCELLED.value})


@dataclass(frozen=True, slots=True)
class ListedEvaluation:
    """An evaluation and its mean score per version number (empty before it ended)."""

    evaluation: EvaluationView
    means: list[tuple[int, float]]


@dataclass(frozen=True, slots=True)
class EvaluationsPage:
    """A page of evaluations, newest first, and the cursor of the next one."""

    evaluations: list[ListedEvaluation]
    next: str | None


@dataclass(frozen=True, slots=True)
class ScoredRow:
    """One item of an evaluation: an example under one version, its score and feedback."""

    index: int
    version: int | None
    example: Any
    status: str
    score: float | None
    text: str | None
    error: str | None


@dataclass(frozen=True, slots=True)
class EvaluationPage:
    """An evaluation (with its result once ended), a page of its items and where the next
    page starts (``None``: this is the last)."""

    evaluation: EvaluationView
    rows: list[ScoredRow]
    next: int | None


async def evaluations_page(
    session: AsyncSession, tenant_id: str, limit: int, before: str | None
) -> EvaluationsPage:
    """The tenant's ``limit`` newest evaluations (before the cursor ``before``)."""
    found, nxt = await evaluations.listing(session, tenant_id, limit, before)
    ended = {e.id: len(e.versions) for e in found if e.status in ENDED_SCORED}
    means = await evaluation_scores.slot_means(session, ended)
    return EvaluationsPage([_listed(e, means.get(e.id, {})) for e in found], nxt)


def _listed(view: EvaluationView, by_slot: dict[int, tuple[float, int]]) -> ListedEvaluation:
    if len(by_slot) != len(view.versions):
        return ListedEvaluation(view, [])
    return ListedEvaluation(view, [(n, by_slot[s][0]) for s, n in enumerate(view.versions)])


async def evaluation_page(
    session: AsyncSession, tenant_id: str, evaluation_id: str, after: int, limit: int
) -> EvaluationPage:
    """Everything the evaluation's page shows; ``NotFound`` for another tenant's."""
    view = await evaluations.status(session, tenant_id, evaluation_id)
    items = await jobs_repo.results_page(session, evaluation_id, after, limit)
    rows = [scored_row(item, view.versions) for item in items]
    return EvaluationPage(view, rows, items[-1].item_index if len(items) == limit else None)


def scored_row(item: JobItem, versions: list[int]) -> ScoredRow:
    """An evaluation item as its page shows it (an item input as ``layout.items_of`` lays
    it out; an output as the evaluation kind stores it)."""
    given = item.input if isinstance(item.input, dict) else {}
    slot = given.get("version")
    version = versions[slot] if isinstance(slot, int) and 0 <= slot < len(versions) else None
    example = (given.get("example") or {}).get("id")
    output = item.output if isinstance(item.output, dict) else {}
    score = output.get("score")
    score = float(score) if isinstance(score, int | float) else None
    text = output.get("text") if isinstance(output.get("text"), str) else None
    return ScoredRow(item.item_index, version, example, item.status, score, text, item.error)
