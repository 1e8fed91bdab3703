"""Graph API models."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


class GraphVersionOut(BaseModel):
    id: str
    name: str
    version: int
    hash: str
    created_at: datetime
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


class VersionList(BaseModel):
    id: str
    name: str
    items: list[VersionEntry]
