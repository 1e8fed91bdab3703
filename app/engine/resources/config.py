"""Endpoint configuration: which model each alias calls and under which limits (DESIGN §8).

>>> cfg = ResourceConfig.from_dict({"endpoints": {"fast": {"provider": "simulated",
...     "model": "sim-1", "max_concurrent": 8, "rpm": 600}}})
>>> cfg.endpoints["fast"].rpm
600.0
"""

from __future__ import annotations

import hashlib
import json
import re
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from app.engine.errors import ConfigError

Provider = Literal["openai", "azure", "openai-compatible", "anthropic", "simulated"]
ModelFamily = Literal["chat", "reasoning"]
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$")


class EndpointConfig(BaseModel):
    """One alias: provider, model, address, limits, retry policy and prices."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: Provider
    model: str = Field(min_length=1)
    base_url: str | None = None
    api_key_env: str | None = Field(
        default=None, description="environment variable holding the key"
    )
    max_concurrent: int = Field(default=16, ge=1, le=100_000)
    rpm: float | None = Field(default=None, gt=0, description="requests per minute")
    tpm: float | None = Field(default=None, gt=0, description="tokens per minute")
    timeout_s: float = Field(default=60.0, gt=0)
    max_retries: int = Field(default=3, ge=0, le=100)
    max_rate_limit_retries: int = Field(default=30, ge=0, le=10_000)
    input_price_per_million: float = Field(default=0.0, ge=0)
    output_price_per_million: float = Field(default=0.0, ge=0)
    simulated_latency_s: float = Field(default=0.0, ge=0, description="simulated provider only")
    headers: dict[str, str] = Field(default_factory=dict, description="sent on every call")
    headers_env: dict[str, str] = Field(
        default_factory=dict, description="header name -> environment variable holding its value"
    )
    model_family: ModelFamily | None = Field(
        default=None, description="openai/azure: 'reasoning' for o-series/GPT-5 (default: by name)"
    )
    deployment: str | None = Field(default=None, description="azure: deployment (default: model)")
    api_version: str | None = Field(default=None, description="azure: the api-version parameter")
    cache: Literal["off", "read", "read_write"] | None = Field(
        default=None, description="ledger mode of this alias's calls when a run sets none"
    )

    @field_validator("headers", "headers_env")
    @classmethod
    def _header_lines(cls, headers: dict[str, str]) -> dict[str, str]:
        for name, value in headers.items():
            if not _HEADER_NAME.match(name):
                raise ValueError(f"{name!r} is not an HTTP header name")
            if any(c in value for c in "\r\n\0"):
                raise ValueError(f"the value of header {name!r} holds a line break or NUL")
        return headers

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        """Price of a call in the currency of the price table."""
        return (
            input_tokens * self.input_price_per_million
            + output_tokens * self.output_price_per_million
        ) / 1_000_000


class ResourceConfig(BaseModel):
    """Every endpoint alias a pipeline may use."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    endpoints: dict[str, EndpointConfig] = Field(default_factory=dict)
    # A request's ``model`` name -> the alias that serves it (Batch API lines); a model not
    # listed is served by the alias of that name, if any.
    models: dict[str, str] = Field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Any) -> ResourceConfig:
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(f"invalid endpoint configuration: {exc}") from None

    @classmethod
    def from_yaml(cls, path: str | Path) -> ResourceConfig:
        """Load ``endpoints: {alias: {...}}`` from a YAML (or JSON) file."""
        import yaml

        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read endpoint configuration {path}: {exc}") from None
        return cls.from_dict(data or {})

    def endpoint(self, alias: str) -> EndpointConfig:
        try:
            return self.endpoints[alias]
        except KeyError:
            known = ", ".join(sorted(self.endpoints)) or "none"
            raise ConfigError(f"unknown endpoint alias {alias!r} (configured: {known})") from None

    @cached_property
    def fingerprint(self) -> str:
        """Identity of the configuration: equal configs share one resource manager."""
        text = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()
