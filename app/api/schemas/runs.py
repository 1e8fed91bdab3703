"""Runs API models."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.api.schemas.common import RequestedVersion
from app.api.schemas.nodes import NodeRecordOut


class RunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    graph_id: str = Field(min_length=1, max_length=200, description="graph id or name")
    version: RequestedVersion = None
    inputs: dict[str, Any]
    cache: Literal["off", "read", "read_write"] | None = Field(
        default=None, description="response ledger: off, read or read_write (docs/ledger.md)"
    )
    replay: Literal["strict"] | None = Field(
        default=None, description="strict: every model call must be answered by the ledger"
    )


class RunResponse(BaseModel):
    graph_id: str
    version: int
    status: str
    outputs: dict[str, Any]
    failed_nodes: list[str]
    nodes: dict[str, NodeRecordOut]
    usage: dict[str, Any]
