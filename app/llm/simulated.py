"""A deterministic offline model for demos and tests: no network, no randomness.

The reply is a pure function of the request's model, system prompt, prompt, response format
and ``max_tokens``, so results never depend on timing or concurrency. Every reply is marked
as simulated: text starts with ``[simulated #<tag>]``, JSON objects carry ``"simulated": true``
(except objects built from a caller's schema, which must conform to it), and every response
has ``extra["simulated"] = True``.

Models named after a simulated optimization role (``sim-task``, ``sim-critic``, ``sim-judge``,
``sim-optimizer`` and their variants) answer with :mod:`app.llm.simulation` instead, in that
role's own format (no ``[simulated #...]`` mark: the reply is what the role's parser reads).

- Text: a few "key points" taken from the prompt's sentences, chosen by a hash of the request.
- ``"json"``: ``{"simulated": true, "tag": ..., "summary": ..., "points": [...]}``.
- A JSON schema: a value that conforms to it (types, properties, items, enums, const,
  bounds, ``$ref`` to local definitions), with strings taken from the prompt.
- Token counts are estimated as ``ceil(characters / 4)``; ``max_tokens`` truncates the reply
  (``finish_reason="length"``).

>>> reply = simulate(LLMRequest(model="m", system="", prompt="Cats purr. Dogs bark."), "sim")
>>> reply.text.startswith("[simulated #"), reply.finish_reason, reply.model
(True, 'stop', 'sim')
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import re
from dataclasses import dataclass
from typing import Any

from app.engine.errors import LLMCallError
from app.engine.llm import LLMRequest, LLMResponse
from app.llm.errors import ProviderRateLimitedError, ProviderTransientError
from app.llm.simulation import answer as simulation_answer
from app.llm.simulation import noise

HEADINGS = ("Key points", "Main facts", "Summary", "Notes")
MAX_POINTS = 3
POINT_CHARS = 120
MAX_DEPTH = 8

_SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+|\n+")
_BULLET = re.compile(r"^\s*(?:[-*•>#]+|\d+[.)])\s*")


class SimulatedClient:
    """An :class:`~app.engine.llm.LLMClient` that answers offline with :func:`simulate`.

    ``latency_s`` adds a fixed ``asyncio.sleep`` per call; 0 only yields to the loop once.
    A simulated role's noise variants (:mod:`app.llm.simulation.noise`) add their seeded
    latency and raise the provider's 429 and 500 errors on the attempts their schedule says.
    """

    def __init__(self, model: str = "simulated", *, latency_s: float = 0.0) -> None:
        self.model = model
        self.latency_s = latency_s
        self.attempts = noise.Attempts()

    async def complete(self, request: LLMRequest) -> LLMResponse:
        """The simulated reply to ``request``, after the configured latency."""
        system, prompt = request.system, request.prompt
        await asyncio.sleep(self.latency_s + noise.latency_s(self.model, system, prompt))
        if noise.scheduled(self.model):
            attempt = self.attempts.next(self.model, system, prompt)
            status = noise.fault(self.model, system, prompt, attempt)
            if status is not None:
                raise scheduled_error(self.model, status)
        return simulate(request, self.model)

    async def aclose(self) -> None:
        """Nothing to release."""


def scheduled_error(model: str, status: int) -> LLMCallError:
    """The provider error a real endpoint raises for a scheduled 429 or 500."""
    message = f"simulated HTTP {status} from {model}"
    if status == 429:
        return ProviderRateLimitedError(message, retry_after=noise.RETRY_AFTER_S)
    return ProviderTransientError(message, status_code=status)


def simulate(request: LLMRequest, model: str) -> LLMResponse:
    """The reply to ``request`` as ``model`` would give it: a pure function of the request.

    A simulated role that fails (``sim-critic:fail``) raises a transient LLM error.
    """
    text = simulation_answer(model, request.system, request.prompt)
    if text is None:
        text = reply_text(request)
    output_tokens, finish = estimate_tokens(text), "stop"
    if request.max_tokens is not None and output_tokens > request.max_tokens:
        text, output_tokens, finish = text[: request.max_tokens * 4], request.max_tokens, "length"
    return LLMResponse(
        text=text,
        input_tokens=estimate_tokens(request.system) + estimate_tokens(request.prompt),
        output_tokens=output_tokens,
        finish_reason=finish,
        model=model,
        extra={"simulated": True},
    )


def estimate_tokens(text: str) -> int:
    """``ceil(len(text) / 4)``, the usual rough estimate for English text.

    >>> estimate_tokens(""), estimate_tokens("abcde")
    (0, 2)
    """
    return math.ceil(len(text) / 4)


def reply_text(request: LLMRequest) -> str:
    """The full (untruncated) reply for a request's format."""
    digest = request_digest(request)
    points = sentences(request.prompt)
    fmt = request.response_format
    if isinstance(fmt, dict):
        return json.dumps(SchemaFaker(fmt, digest, points).value())
    if fmt == "json":
        return json.dumps(_json_reply(digest, points))
    return _text_reply(digest, points)


def request_digest(request: LLMRequest) -> str:
    """A stable hex digest of everything the reply depends on."""
    key: list[Any] = [request.model, request.system, request.prompt, request.response_format]
    if request.messages:  # only then, so that the replies to plain requests stay as they were
        key.append(list(request.messages))
    data = json.dumps(key, sort_keys=True, ensure_ascii=False).encode()
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def sentences(text: str) -> list[str]:
    """The distinct sentences of ``text``, bullets and numbering removed, in order.

    >>> sentences("- One.\\n- Two! One.")
    ['One.', 'Two!']
    """
    found: dict[str, None] = {}
    for part in _SENTENCE_BREAK.split(text):
        cleaned = _BULLET.sub("", part).strip()
        if cleaned:
            found.setdefault(_clip(cleaned, POINT_CHARS))
    return list(found)


def _text_reply(digest: str, points: list[str]) -> str:
    heading = HEADINGS[_pick(digest, "heading") % len(HEADINGS)]
    chosen = _choose(digest, points)
    if not chosen:
        return f"[simulated #{digest[:8]}] {heading}: (the prompt was empty)"
    lines = "\n".join(f"- {point}" for point in chosen)
    return f"[simulated #{digest[:8]}] {heading}:\n{lines}"


def _json_reply(digest: str, points: list[str]) -> dict[str, Any]:
    chosen = _choose(digest, points)
    summary = chosen[0] if chosen else "(the prompt was empty)"
    return {"simulated": True, "tag": digest[:8], "summary": summary, "points": chosen}


def _choose(digest: str, points: list[str]) -> list[str]:
    """Up to MAX_POINTS points picked by hash, kept in prompt order."""
    if len(points) <= MAX_POINTS:
        return points
    ranked = sorted(range(len(points)), key=lambda i: _pick(digest, f"point{i}"))
    return [points[i] for i in sorted(ranked[:MAX_POINTS])]


def _pick(digest: str, path: str) -> int:
    return int.from_bytes(hashlib.blake2b(f"{digest}/{path}".encode(), digest_size=8).digest())


def _clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0] or text[: limit - 1]
    return cut + "…"


@dataclass(slots=True)
class SchemaFaker:
    """Builds a value that conforms to a JSON schema, deterministically from a digest.

    >>> SchemaFaker({"type": "object", "properties": {"ok": {"type": "boolean"},
    ...     "kind": {"enum": ["a"]}}}, "d", []).value()["kind"]
    'a'
    """

    schema: dict[str, Any]
    digest: str
    points: list[str]

    def __post_init__(self) -> None:
        self.schema = _unwrap(self.schema)  # {"name", "schema"} wrappers; $refs use the inner root

    def value(self) -> Any:
        """A value for the whole schema."""
        return self._value(self.schema, "$", 0)

    def _value(self, schema: Any, path: str, depth: int) -> Any:
        if not isinstance(schema, dict) or depth > MAX_DEPTH:
            return None
        if "$ref" in schema:
            return self._value(self._resolve(schema["$ref"]), path, depth + 1)
        if "const" in schema:
            return schema["const"]
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            return schema["enum"][_pick(self.digest, path) % len(schema["enum"])]
        for key in ("anyOf", "oneOf", "allOf"):
            if isinstance(schema.get(key), list) and schema[key]:
                return self._value(schema[key][0], path, depth + 1)
        return self._typed(_type_of(schema), schema, path, depth)

    def _typed(self, kind: str, schema: dict[str, Any], path: str, depth: int) -> Any:
        if kind == "object":
            return self._object(schema, path, depth)
        if kind == "array":
            return self._array(schema, path, depth)
        if kind in ("integer", "number"):
            return self._number(kind, schema, path)
        if kind == "boolean":
            return _pick(self.digest, path) % 2 == 0
        return None if kind == "null" else self._string(schema, path)

    def _object(self, schema: dict[str, Any], path: str, depth: int) -> dict[str, Any]:
        properties = schema.get("properties")
        if depth >= MAX_DEPTH or not isinstance(properties, dict):
            return {}
        return {k: self._value(v, f"{path}.{k}", depth + 1) for k, v in properties.items()}

    def _array(self, schema: dict[str, Any], path: str, depth: int) -> list[Any]:
        if depth >= MAX_DEPTH:
            return []
        low, high = _int(schema, "minItems", 0), _int(schema, "maxItems", 3)
        count = min(max(1 + _pick(self.digest, path) % 3, low), max(high, low))
        items = schema.get("items", {})
        return [self._value(items, f"{path}[{i}]", depth + 1) for i in range(count)]

    def _number(self, kind: str, schema: dict[str, Any], path: str) -> int | float:
        low, high = _bounds(schema, 1 if kind == "integer" else 0.01)
        fraction = (_pick(self.digest, path) % 10_000) / 10_000
        if kind == "integer":
            low, high = math.ceil(low), max(math.floor(high), math.ceil(low))
            return low + int(fraction * (high - low + 1))
        return min(max(round(low + fraction * (high - low), 2), low), high)

    def _string(self, schema: dict[str, Any], path: str) -> str:
        text = _FORMATS.get(schema.get("format", ""))
        if text is None:
            text = self._sentence(path)
        low, high = _int(schema, "minLength", 0), _int(schema, "maxLength", 10_000)
        return text[:high].ljust(low, ".")

    def _sentence(self, path: str) -> str:
        if not self.points:
            return f"simulated {path.rsplit('.', 1)[-1]}"
        return self.points[_pick(self.digest, path) % len(self.points)]

    def _resolve(self, ref: Any) -> Any:
        node: Any = self.schema
        if not isinstance(ref, str) or not ref.startswith("#"):
            return None
        for part in filter(None, ref[1:].split("/")):
            node = node.get(part) if isinstance(node, dict) else None
        return node


_FORMATS = {
    "date": "2024-01-01",
    "date-time": "2024-01-01T00:00:00Z",
    "time": "00:00:00Z",
    "email": "simulated@example.com",
    "uri": "https://example.com/simulated",
    "uuid": "00000000-0000-4000-8000-000000000000",
}


def _bounds(schema: dict[str, Any], step: float) -> tuple[float, float]:
    """Inclusive bounds; exclusive ones are moved in by ``step``; 100 wide when open."""
    low, high = _num(schema, "minimum"), _num(schema, "maximum")
    if low is None and (excl := _num(schema, "exclusiveMinimum")) is not None:
        low = excl + step
    if high is None and (excl := _num(schema, "exclusiveMaximum")) is not None:
        high = excl - step
    if low is None:
        low = 0.0 if high is None or high >= 0 else high - 100
    return low, max(high if high is not None else low + 100, low)


def _num(schema: dict[str, Any], key: str) -> float | None:
    value = schema.get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _int(schema: dict[str, Any], key: str, default: int) -> int:
    value = _num(schema, key)
    return max(int(value), 0) if value is not None else default


def _unwrap(fmt: dict[str, Any]) -> Any:
    if fmt.get("type") == "json_schema" and isinstance(fmt.get("json_schema"), dict):
        fmt = fmt["json_schema"]
    return fmt["schema"] if isinstance(fmt.get("schema"), dict) else fmt


def _type_of(schema: dict[str, Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if isinstance(kind, str):
        return kind
    if "properties" in schema:
        return "object"
    return "array" if "items" in schema else "string"
