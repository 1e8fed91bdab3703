"""Runs API models."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from app.api.schemas.common import INT32_MAX
from app.api.schemas.nodes import NodeRecordOut


class RunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    graph_id: str = Field(min_length=1, max_length=200, description="graph id or name")
    version: int | None = Field(
        default=None,
        ge=1,
        le=INT32_MAX,
        strict=True,
        description="graph version (default: the graph's active version)",
    )
    inputs: dict[str, Any]


class RunResponse(BaseModel):
    graph_id: str
    version: int
    status: str
    outputs: dict[str, Any]
    failed_nodes: list[str]
    nodes: dict[str, NodeRecordOut]
    usage: dict[str, Any]
