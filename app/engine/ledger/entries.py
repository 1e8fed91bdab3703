"""What the ledger keeps per key: the request (as JSON data), its sample, and the answer.

Plain JSON both ways, never pickle: a ledger file or row can be read, diffed and audited.

>>> entry = entry_for("v1:ab", "n", {"model": "m"}, Sample(), LLMResponse("hi", 3, 1))
>>> response_of(LedgerEntry.from_dict(entry.to_dict())).text
'hi'
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from app.engine.ledger.key import Sample
from app.engine.llm import Choice, LLMResponse


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One recorded call: ``key`` (see :mod:`app.engine.ledger.key`), the node that made it,
    the canonical request, its sample and twin rank, and the answer as JSON data."""

    key: str
    node: str
    request: dict[str, Any]
    response: dict[str, Any]
    sample: int = 0
    twin: int = 0
    created_at: float = field(default_factory=time.time)

    @property
    def compared(self) -> dict[str, Any]:
        """The request with its sample: what strict replay compares field by field."""
        return {**self.request, "sample": self.sample, "twin": self.twin}

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "node": self.node,
            "request": self.request,
            "response": self.response,
            "sample": self.sample,
            "twin": self.twin,
            "created_at": self.created_at,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LedgerEntry:
        return cls(
            data["key"],
            data["node"],
            dict(data["request"]),
            dict(data["response"]),
            int(data.get("sample", 0)),
            int(data.get("twin", 0)),
            float(data.get("created_at", 0.0)),
        )


def entry_for(
    key: str, node: str, request: dict[str, Any], sample: Sample, response: LLMResponse
) -> LedgerEntry:
    """The entry recording ``response`` as the answer to ``request``."""
    return LedgerEntry(key, node, request, response_data(response), sample.index, sample.twin)


def response_data(response: LLMResponse) -> dict[str, Any]:
    """The answer's JSON form: text, tool calls, choices, finish reason, model and tokens."""
    return {
        "text": response.text,
        "tool_calls": list(response.tool_calls),
        "choices": [_choice_data(c) for c in response.choices],
        "finish_reason": response.finish_reason,
        "model": response.model,
        "input_tokens": response.input_tokens,
        "output_tokens": response.output_tokens,
    }


def response_of(entry: LedgerEntry) -> LLMResponse:
    """The recorded answer as a response (no tokens: a replay spends none)."""
    data = entry.response
    return LLMResponse(
        text=str(data.get("text", "")),
        finish_reason=data.get("finish_reason"),
        model=str(data.get("model") or ""),
        tool_calls=tuple(data.get("tool_calls") or ()),
        choices=tuple(_choice(c) for c in data.get("choices") or ()),
    )


def _choice_data(choice: Choice) -> dict[str, Any]:
    return {
        "text": choice.text,
        "tool_calls": list(choice.tool_calls),
        "finish_reason": choice.finish_reason,
    }


def _choice(data: dict[str, Any]) -> Choice:
    return Choice(
        str(data.get("text", "")), tuple(data.get("tool_calls") or ()), data.get("finish_reason")
    )
