"""Graph API models."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel


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


class VersionEntry(BaseModel):
    version: int
    hash: str
    created_at: datetime
    parameter_changes: list[dict[str, Any]]


class VersionList(BaseModel):
    id: str
    name: str
    items: list[VersionEntry]
