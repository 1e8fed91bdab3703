"""Where two recorded requests differ: the path of the first field, and how many fields do.

>>> first_difference({"a": 1, "m": [{"c": "x"}]}, {"a": 1, "m": [{"c": "y"}]})
'm[0].c'
>>> first_difference({"a": 1}, {"a": 1}) is None
True
>>> distance({"a": 1, "b": 2, "c": 3}, {"a": 1, "b": 5})
2
"""

from __future__ import annotations

from typing import Any

FIELD_ORDER = ("model", "messages", "response_format", "sample", "twin")
"""Fields reported first when several differ; the rest follow in name order."""


def first_difference(old: Any, new: Any, path: str = "") -> str | None:
    """The path (``messages[1].content``) of the first place ``old`` and ``new`` differ."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in _ordered(old.keys() | new.keys()):
            found = first_difference(old.get(key), new.get(key), f"{path}.{key}" if path else key)
            if found is not None:
                return found
        return None
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            found = first_difference(a, b, f"{path}[{i}]")
            if found is not None:
                return found
        return None
    return None if old == new else (path or "request")


def distance(old: dict[str, Any], new: dict[str, Any]) -> int:
    """How many top-level fields differ (the nearest recorded request has the fewest)."""
    return sum(old.get(key) != new.get(key) for key in old.keys() | new.keys())


def value_at(data: Any, path: str) -> Any:
    """The value at a path from :func:`first_difference` (``None`` where it is absent)."""
    for part in path.replace("[", ".[").split("."):
        if not part:
            continue
        if part.startswith("["):
            index = int(part[1:-1])
            data = data[index] if isinstance(data, list) and index < len(data) else None
        else:
            data = data.get(part) if isinstance(data, dict) else None
    return data


def _ordered(keys: set[str]) -> list[str]:
    first = [key for key in FIELD_ORDER if key in keys]
    return first + sorted(keys - set(FIELD_ORDER))
