"""Deterministic reply generation: a pure function of the request, never of timing."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ChatRequest",
    "Completion",
    "complete",
    "default_reply",
    "estimate_tokens",
    "reply_hash",
]

_PREVIEW_CHARS = 200
_MAX_SCHEMA_DEPTH = 8


@dataclass(slots=True)
class ChatRequest:
    """The parts of a chat request that the fake server looks at."""

    model: str
    system: str
    prompt: str
    prompt_tokens: int
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()
    response_format: dict[str, Any] | None = None
    forced_tool: str | None = None  # the tool the request forces; the answer is a call of it
    n: int = 1

    @property
    def match_text(self) -> str:
        """The text scripted rules search: system then user content."""
        return f"{self.system}\n{self.prompt}"


@dataclass(slots=True)
class Completion:
    """A reply after stop sequences and max_tokens were applied."""

    text: str
    tokens: int
    truncated: bool
    stop_sequence: str | None


def estimate_tokens(chars: int) -> int:
    """Deterministic token estimate: one token per four characters, rounded up."""
    return (chars + 3) // 4


def reply_hash(req: ChatRequest) -> str:
    """First 8 hex digits of sha256 over model, system, user content and response_format."""
    fmt = "" if req.response_format is None else json.dumps(req.response_format, sort_keys=True)
    key = "\x00".join((req.model, req.system, req.prompt, fmt))
    return hashlib.sha256(key.encode()).hexdigest()[:8]


def default_reply(req: ChatRequest) -> str:
    """The reply given when no rule supplies one; JSON text in JSON mode."""
    digest = reply_hash(req)
    text = f"reply[{digest}]: {req.prompt[:_PREVIEW_CHARS]}"
    fmt = req.response_format
    if fmt is None or fmt.get("type") not in ("json_object", "json_schema"):
        return text
    schema = _schema_of(fmt)
    if schema is not None:
        value = _instance(schema, "value", digest, len(req.prompt), 0)
        if isinstance(value, dict):
            return json.dumps(value)
    return json.dumps({"reply": text, "hash": digest, "length": len(req.prompt)})


def complete(text: str, req: ChatRequest) -> Completion:
    """Cut `text` at the first stop sequence, then at max_tokens."""
    stop_sequence = None
    for seq in req.stop:
        cut = text.find(seq) if seq else -1
        if cut >= 0:
            text, stop_sequence = text[:cut], seq
    tokens = estimate_tokens(len(text))
    limit = req.max_tokens
    if limit is not None and tokens > limit:
        return Completion(text[: limit * 4], limit, True, None)
    return Completion(text, tokens, False, stop_sequence)


def _schema_of(fmt: dict[str, Any]) -> dict[str, Any] | None:
    wrapper = fmt.get("json_schema")
    if not isinstance(wrapper, dict):
        return None
    schema = wrapper.get("schema")
    return schema if isinstance(schema, dict) else None


def _instance(schema: dict[str, Any], name: str, digest: str, length: int, depth: int) -> Any:
    """A deterministic value valid for the simple JSON Schema subset LLM APIs accept."""
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        options = schema["enum"]
        return options[int(digest, 16) % len(options)]
    kind = schema.get("type", "object" if "properties" in schema else None)
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" and depth < _MAX_SCHEMA_DEPTH:
        props = schema.get("properties") or {}
        return {k: _instance(v, k, digest, length, depth + 1) for k, v in props.items()}
    if kind == "array" and depth < _MAX_SCHEMA_DEPTH:
        items = schema.get("items")
        return [_instance(items, name, digest, length, depth + 1)] if items else []
    return _scalar(kind, name, digest, length)


def _scalar(kind: Any, name: str, digest: str, length: int) -> Any:
    if kind == "string":
        return f"{name}-{digest}"
    if kind == "integer":
        return length
    if kind == "number":
        return float(length)
    if kind == "boolean":
        return int(digest, 16) % 2 == 0
    return None
