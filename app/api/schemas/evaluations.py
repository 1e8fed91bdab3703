"""Evaluation API models. The request body is
:class:`~app.services.optimization.spec.EvaluationSpec` (read from the raw JSON, so its field
paths name the request's own fields)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from app.api.schemas.jobs import Counts


class VersionResultOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    version: int
    mean: float
    n: int
    failures: int = Field(description="items whose forward pass or loss failed (scored 0)")
    low: float = Field(description="the 95% bootstrap interval of the mean, seeded by seed")
    high: float


class PairedDeltaOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    delta: float = Field(description="the mean of b - a over the examples (b: versions[1])")
    low: float
    high: float


class EvaluationResultOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    versions: list[VersionResultOut]
    paired: PairedDeltaOut | None
    partial: bool = Field(
        description="a cancelled evaluation's: over the examples scored before it stopped"
    )


class EvaluationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    status: str
    graph_id: str
    versions: list[int]
    dataset: str
    seed: int
    counts: Counts
    usage: dict[str, Any] = Field(
        description="input_tokens, output_tokens and cost, and under roles the calls, tokens "
        "and cost of the graph (task) and of an LLM judge (judge)"
    )
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    result: EvaluationResultOut | None = Field(
        description="once the evaluation completed; partial once cancelled, if any example "
        "was scored"
    )


class EvaluationPage(BaseModel):
    items: list[EvaluationOut]
    next: str | None
