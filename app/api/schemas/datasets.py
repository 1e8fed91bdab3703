"""Dataset API models."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


class DatasetOut(BaseModel):
    """A dataset's metadata; ``hash`` is the SHA-256 of its canonical lines."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    hash: str
    count: int
    created_at: datetime
    created: bool | None = None


class DatasetPage(BaseModel):
    items: list[DatasetOut]
    next: str | None


class DatasetItemOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    index: int
    id: str | None
    input: dict[str, Any]
    expected: Any


class DatasetItemPage(BaseModel):
    """Items in upload order; pass ``next`` as ``after`` for the next page."""

    model_config = ConfigDict(from_attributes=True)

    items: list[DatasetItemOut]
    next: int | None
