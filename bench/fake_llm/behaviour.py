"""Behaviour model of the fake LLM server: global knobs and scripted rules.

Validated once per configuration change, never per request.
"""

from __future__ import annotations

from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

__all__ = ["Behaviour", "BehaviourError", "Rule", "parse_behaviour"]


class BehaviourError(ValueError):
    """Raised when a behaviour or rule document is invalid."""


class Rule(BaseModel):
    """A scripted answer for requests whose system + user text contains `match`.

    At most one of `status`, `malformed` and `hang` may be set; with none of them the
    rule answers 200 with `reply` (or the default reply when `reply` is null).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    match: str = ""
    reply: str | None = None
    status: int | None = Field(default=None, ge=400, le=599)
    times: int | None = Field(default=None, ge=0)
    delay_ms: float | None = Field(default=None, ge=0)
    malformed: bool = False
    hang: bool = False
    retry_after_s: float | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _one_outcome(self) -> Self:
        outcomes = (self.status is not None, self.malformed, self.hang)
        if sum(outcomes) > 1:
            raise ValueError("a rule sets at most one of status, malformed, hang")
        return self


class Behaviour(BaseModel):
    """Global behaviour of the server; every field has a default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    latency_ms: float = Field(default=0.0, ge=0)
    jitter_ms: float = Field(default=0.0, ge=0)
    rpm: float | None = Field(default=None, gt=0)
    rate_window_s: float = Field(default=60.0, gt=0)
    # What the `rpm` cap tells clients: `full` sends x-ratelimit-* on every answer and
    # Retry-After on its 429s; `retry_after` only Retry-After on its 429s (a cap that is not
    # declared); `none` nothing at all.
    rate_headers: Literal["full", "retry_after", "none"] = "full"
    error_rate: float = Field(default=0.0, ge=0, le=1)
    timeout_rate: float = Field(default=0.0, ge=0, le=1)
    malformed_rate: float = Field(default=0.0, ge=0, le=1)
    seed: int = 0
    log: bool = True
    capture: bool = False  # keep each request's JSON body, headers and query in the log
    # A plain-text default reply ends with " #<arrival number>", so no two answers are alike
    # (a test can then tell an answer replayed from a recording from a fresh one).
    unique_replies: bool = False
    max_in_flight: int | None = Field(default=None, ge=1)
    # Prompt tokens each answer reports as read from a prompt cache (at most the prompt's).
    cached_tokens: int = Field(default=0, ge=0)
    rules: tuple[Rule, ...] = ()

    @model_validator(mode="after")
    def _rates_fit(self) -> Self:
        if self.error_rate + self.timeout_rate + self.malformed_rate > 1.0:
            raise ValueError("error_rate + timeout_rate + malformed_rate must be <= 1")
        return self

    @property
    def fault_rate(self) -> float:
        """Probability that a request gets a random fault."""
        return self.error_rate + self.timeout_rate + self.malformed_rate

    @property
    def rate_cap(self) -> int | None:
        """Accepted requests allowed per sliding window, or None without a cap."""
        if self.rpm is None:
            return None
        return max(1, int(self.rpm * self.rate_window_s / 60.0))


def parse_behaviour(data: Any) -> Behaviour:
    """Validate a JSON document into a Behaviour; unspecified fields take defaults."""
    if not isinstance(data, dict):
        raise BehaviourError("behaviour must be a JSON object")
    try:
        return Behaviour.model_validate(data)
    except ValidationError as exc:
        raise BehaviourError(_summarise(exc)) from None


def _summarise(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "behaviour"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)
