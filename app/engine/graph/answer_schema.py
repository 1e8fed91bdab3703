"""The JSON schemas of human answers: a small, safe subset of JSON Schema, checked at upload.

A ``human`` node's ``schema`` may use only the keywords below. There are no regular
expressions (``pattern``), no references (``$ref``) and no formats, so checking an answer is
linear in the answer and the schema, whatever a hostile upload sends; depth and size are
bounded too. An unknown keyword is refused at upload, naming its field.

    >>> schema_issues({"type": "object", "required": ["ok"],
    ...                "properties": {"ok": {"type": "boolean"}}})
    []
    >>> answer_errors({"type": "object", "required": ["ok"]}, {})
    [('answer.ok', 'is required')]
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

MAX_DEPTH = 16
MAX_SCHEMA_BYTES = 65_536
TYPES = ("object", "array", "string", "number", "integer", "boolean", "null")
_SUBSCHEMA = ("items", "additionalProperties")
_NUMBERS = ("minimum", "maximum")
_COUNTS = ("minLength", "maxLength", "minItems", "maxItems")
KEYWORDS = frozenset(
    {"type", "properties", "required", "enum", "const", "description", "title", "default"}
    | set(_SUBSCHEMA) | set(_NUMBERS) | set(_COUNTS) | {"anyOf"}
)  # fmt: skip


def schema_issues(schema: Any, field: str = "schema") -> list[tuple[str, str]]:
    """What is wrong with ``schema``: (field, message) pairs, empty when it is usable."""
    try:
        size = len(json.dumps(schema))
    except (TypeError, ValueError):
        return [(field, "is not JSON")]
    if size > MAX_SCHEMA_BYTES:
        return [(field, f"is over {MAX_SCHEMA_BYTES} bytes")]
    return list(_issues(schema, field, 0))


def _issues(schema: Any, field: str, depth: int) -> Iterator[tuple[str, str]]:
    if isinstance(schema, bool):
        return
    if not isinstance(schema, dict):
        yield field, "a schema is an object or a boolean"
        return
    if depth > MAX_DEPTH:
        yield field, f"is nested deeper than {MAX_DEPTH}"
        return
    for key in schema:
        if key not in KEYWORDS:
            yield f"{field}.{key}", "is not a supported keyword (no pattern, $ref or format)"
    yield from _keyword_issues(schema, field, depth)


def _keyword_issues(schema: dict[str, Any], field: str, depth: int) -> Iterator[tuple[str, str]]:
    kind = schema.get("type")
    kinds = kind if isinstance(kind, list) else [kind] if kind is not None else []
    if any(k not in TYPES for k in kinds):
        yield f"{field}.type", f"must be one of {', '.join(TYPES)}"
    properties = schema.get("properties", {})
    if not isinstance(properties, dict):
        yield f"{field}.properties", "must be an object"
    else:
        for name, sub in properties.items():
            yield from _issues(sub, f"{field}.properties.{name}", depth + 1)
    required = schema.get("required", [])
    if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
        yield f"{field}.required", "must be a list of names"
    for key in _SUBSCHEMA:
        if key in schema:
            yield from _issues(schema[key], f"{field}.{key}", depth + 1)
    yield from _bound_issues(schema, field, depth)


def _bound_issues(schema: dict[str, Any], field: str, depth: int) -> Iterator[tuple[str, str]]:
    for key in _NUMBERS:
        if key in schema and not _is_number(schema[key]):
            yield f"{field}.{key}", "must be a number"
    for key in _COUNTS:
        value = schema.get(key, 0)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            yield f"{field}.{key}", "must be a non-negative integer"
    if "enum" in schema and not isinstance(schema["enum"], list):
        yield f"{field}.enum", "must be a list"
    options = schema.get("anyOf", [])
    if not isinstance(options, list) or ("anyOf" in schema and not options):
        yield f"{field}.anyOf", "must be a non-empty list of schemas"
    else:
        for i, sub in enumerate(options):
            yield from _issues(sub, f"{field}.anyOf[{i}]", depth + 1)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def answer_errors(schema: Any, value: Any, field: str = "answer") -> list[tuple[str, str]]:
    """Where ``value`` breaks ``schema`` (checked by :func:`schema_issues`): (field, message)."""
    return list(_errors(schema, value, field))


def _errors(schema: Any, value: Any, field: str) -> Iterator[tuple[str, str]]:
    if schema is True or schema == {}:
        return
    if schema is False:
        yield field, "is not allowed"
        return
    kind = schema.get("type")
    kinds = kind if isinstance(kind, list) else [kind] if kind is not None else []
    if kinds and not any(_is_type(value, k) for k in kinds):
        yield field, f"must be of type {' or '.join(kinds)}"
        return
    if "const" in schema and value != schema["const"]:
        yield field, f"must be {json.dumps(schema['const'])}"
    if "enum" in schema and value not in schema["enum"]:
        yield field, f"must be one of {json.dumps(schema['enum'])[:200]}"
    yield from _value_errors(schema, value, field)
    options = schema.get("anyOf")
    if options and all(list(_errors(sub, value, field)) for sub in options):
        yield field, "matches none of the allowed forms (anyOf)"


def _value_errors(schema: dict[str, Any], value: Any, field: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        yield from _object_errors(schema, value, field)
    elif isinstance(value, list):
        yield from _size_errors(schema, len(value), field, "Items", "items")
        for i, item in enumerate(value):
            yield from _errors(schema.get("items", True), item, f"{field}[{i}]")
    elif isinstance(value, str):
        yield from _size_errors(schema, len(value), field, "Length", "characters")
    elif _is_number(value):
        if "minimum" in schema and value < schema["minimum"]:
            yield field, f"must be at least {schema['minimum']}"
        if "maximum" in schema and value > schema["maximum"]:
            yield field, f"must be at most {schema['maximum']}"


def _size_errors(
    schema: dict[str, Any], size: int, field: str, suffix: str, unit: str
) -> Iterator[tuple[str, str]]:
    low, high = schema.get(f"min{suffix}"), schema.get(f"max{suffix}")
    if low is not None and size < low:
        yield field, f"needs at least {low} {unit}"
    if high is not None and size > high:
        yield field, f"allows at most {high} {unit}"


def _object_errors(
    schema: dict[str, Any], value: dict[str, Any], field: str
) -> Iterator[tuple[str, str]]:
    properties = schema.get("properties", {})
    for name in schema.get("required", []):
        if name not in value:
            yield f"{field}.{name}", "is required"
    extra = schema.get("additionalProperties", True)
    for name, item in value.items():
        sub = properties.get(name, extra)
        if sub is False:
            yield f"{field}.{name}", "is not an allowed field"
        else:
            yield from _errors(sub, item, f"{field}.{name}")


def _is_type(value: Any, kind: str) -> bool:
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return _is_number(value)
    expected = {"object": dict, "array": list, "string": str, "boolean": bool}
    if kind == "null":
        return value is None
    return isinstance(value, expected[kind])
