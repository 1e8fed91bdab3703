"""Parse request documents (JSON, YAML) into plain JSON values that every database can store.

Parsing refuses what would otherwise fail later, deep inside a driver or a serializer: nesting
deeper than a limit, NUL characters and lone surrogates in strings (Postgres text and JSONB
refuse both), ``NaN``/``Infinity``, YAML-only types (dates, binary, sets, non-string keys) and
YAML aliases of collections (which can expand a small document into an exponential one). The
checks take time linear in the size of the parsed document.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import yaml

from app.services.errors import InvalidInput, Issue, Malformed

MAX_DEPTH = 64
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")


def parse_json(data: bytes | str, field: str = "(body)", max_depth: int = MAX_DEPTH) -> Any:
    """The JSON value of ``data``, checked with :func:`check_value`; ``Malformed`` if unparsable."""
    what = "the body" if field == "(body)" else field
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        value = json.loads(text, parse_constant=_no_constant)
    except UnicodeDecodeError as exc:
        raise Malformed(f"{what} is not valid UTF-8", [Issue(field, str(exc))]) from None
    except RecursionError:
        raise _too_deep(field, max_depth) from None
    except ValueError as exc:  # JSONDecodeError, NaN/Infinity, an integer of > 4300 digits
        raise Malformed(f"{what} is not valid JSON", [Issue(field, str(exc))]) from None
    check_value(value, field, max_depth)
    return value


def parse_yaml(data: bytes, field: str = "(body)", max_depth: int = MAX_DEPTH) -> Any:
    """The value of a YAML document (JSON types only, no aliased collections), checked like
    JSON. Flow collections (``[``, ``{``) nested deeper than ``max_depth`` are refused before
    parsing, since the YAML parser spends seconds on them before giving up."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Malformed("the body is not valid UTF-8", [Issue(field, str(exc))]) from None
    if _flow_depth(text) > max_depth:
        raise _too_deep(field, max_depth)
    try:
        value = yaml.load(text, Loader=SAFE_LOADER)
    except RecursionError:
        raise _too_deep(field, max_depth) from None
    except yaml.YAMLError as exc:
        raise Malformed("the body is not valid YAML", [Issue(field, str(exc))]) from None
    check_value(value, field, max_depth)
    return value


def _flow_depth(text: str) -> int:
    """How deeply brackets nest in ``text`` (brackets inside quoted strings count too)."""
    depth = deepest = 0
    for match in _BRACKETS.finditer(text):
        depth = depth + 1 if match.group() in "[{" else max(0, depth - 1)
        deepest = max(deepest, depth)
    return deepest


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _too_deep(field: str, max_depth: int) -> InvalidInput:
    detail = f"{field} is nested more than {max_depth} levels deep"
    return InvalidInput(detail, [Issue(field, f"nested more than {max_depth} levels deep")])


def check_value(value: Any, field: str = "(body)", max_depth: int = MAX_DEPTH) -> None:
    """Raise ``InvalidInput`` naming the first place in ``value`` that is not storable JSON."""
    stack: list[tuple[Any, str, int]] = [(value, field, 0)]
    seen: set[int] = set()
    while stack:
        item, where, depth = stack.pop()
        if depth > max_depth:
            raise _too_deep(field, max_depth)
        if isinstance(item, dict | list):
            _check_once(item, where, seen)
        if isinstance(item, dict):
            for key, child in item.items():
                _check_key(key, where)
                stack.append((child, _join(where, key), depth + 1))
        elif isinstance(item, list):
            stack.extend((child, f"{where}[{i}]", depth + 1) for i, child in enumerate(item))
        else:
            _check_scalar(item, where)


def _check_once(item: Any, where: str, seen: set[int]) -> None:
    # Only a YAML alias makes one collection appear twice; expanding it could be exponential.
    if id(item) in seen:
        raise _invalid(where, "repeats a YAML alias of a collection; write it out")
    seen.add(id(item))


def _join(where: str, key: str) -> str:
    return key if where == "(body)" else f"{where}.{key}"


def _check_key(key: Any, where: str) -> None:
    if not isinstance(key, str):
        raise _invalid(where, f"object keys must be strings, got {type(key).__name__}")
    _check_text(key, where)


def _check_scalar(item: Any, where: str) -> None:
    if isinstance(item, str):
        _check_text(item, where)
    elif isinstance(item, float) and not math.isfinite(item):
        raise _invalid(where, "numbers must be finite")
    elif item is not None and not isinstance(item, bool | int | float):
        raise _invalid(where, f"{type(item).__name__} is not a JSON type")


def _check_text(text: str, where: str) -> None:
    if "\x00" in text:
        raise _invalid(where, "text must not contain NUL (\\u0000)")
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise _invalid(where, "text must not contain lone surrogates") from None


def _invalid(where: str, message: str) -> InvalidInput:
    return InvalidInput(f"{where}: {message}", [Issue(where, message)])


_BRACKETS = re.compile(r"[\[\]{}]")
# LibYAML's parser when PyYAML was built with it: several times faster than the pure-Python one.
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
