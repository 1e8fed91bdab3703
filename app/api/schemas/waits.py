"""Human waits over HTTP: the list of a job's waits, and an answer."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


class Wait(BaseModel):
    """One item at one human node: waiting, answered or timed out (or an answer kept for a
    wait to come: ``prompt`` is null until the item reaches the node)."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    item: int
    node: str
    status: str
    prompt: str | None
    answer: Any = None
    deadline: datetime | None = None
    waited_at: datetime | None = None
    answered_at: datetime | None = None


class WaitList(BaseModel):
    data: list[Wait]


class AnswerRequest(BaseModel):
    """The answer, which must match the node's ``schema``."""

    model_config = ConfigDict(extra="forbid")

    answer: Any
