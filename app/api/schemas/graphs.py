"""Graph API models."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from app.api.schemas.common import INT32_MAX


class GraphVersionOut(BaseModel):
    """A version of a graph; ``active_version`` is the one a job runs when it names none."""

    id: str
    name: str
    version: int
    hash: str
    created_at: datetime
    active_version: int | None = None
    created: bool | None = None
    definition: dict[str, Any] | None = None


class GraphPage(BaseModel):
    items: list[GraphVersionOut]
    next: str | None


class ParameterChangeOut(BaseModel):
    """A parameter added (``before`` null), removed (``after`` null) or rewritten."""

    model_config = ConfigDict(from_attributes=True)

    name: str
    before: str | None
    after: str | None


class VersionEntry(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    version: int
    hash: str
    created_at: datetime
    parameter_changes: list[ParameterChangeOut]
    active: bool
    parent_version: int | None = Field(
        default=None, description="the version an optimization run trained this one from"
    )
    run_id: str | None = Field(default=None, description="the optimization run that created it")
    run_step: int | None = Field(default=None, description="the accepted step that created it")
    diff: dict[str, Any] | None = Field(
        default=None, description="that step's unified diff of each parameter it changed"
    )


class VersionList(BaseModel):
    id: str
    name: str
    items: list[VersionEntry]


class PromoteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1, le=INT32_MAX, strict=True)


class RollbackRequest(BaseModel):
    """Without ``version``: back to the version active before the last move."""

    model_config = ConfigDict(extra="forbid")

    version: int | None = Field(default=None, ge=1, le=INT32_MAX, strict=True)


class ActivationOut(BaseModel):
    """A graph's active version after a promote or rollback, and the one before it."""

    id: str
    name: str
    active_version: int
    previous_version: int | None
