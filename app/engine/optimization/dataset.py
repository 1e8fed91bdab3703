"""Training and evaluation items: ``Example(input, expected, id)``.

A dataset is a sequence of examples, or of dicts ``{"input": ..., "expected": ...}``
(with an optional ``"id"``; without one an item is known by its position).

>>> as_examples([{"input": {"q": "2+2"}, "expected": "4"}])
[Example(input={'q': '2+2'}, expected='4', id=0)]
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from app.engine.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Example:
    """One item: what the pipeline is given, what a loss compares its output with, and the
    id its feedback and scores are tagged with."""

    input: Any
    expected: Any = None
    id: int | str = 0


def as_examples(items: Iterable[Example | Mapping[str, Any]]) -> list[Example]:
    """Examples from examples or ``{"input", "expected", "id"?}`` dicts; ids must be unique."""
    examples = [_example(item, position) for position, item in enumerate(items)]
    ids = [example.id for example in examples]
    if len(set(ids)) != len(ids):
        raise ConfigError("dataset: example ids must be unique")
    return examples


def _example(item: Example | Mapping[str, Any], position: int) -> Example:
    if isinstance(item, Example):
        return item
    if not isinstance(item, Mapping) or "input" not in item:
        raise ConfigError(f"dataset item {position}: expected an Example or a dict with 'input'")
    return Example(item["input"], item.get("expected"), item.get("id", position))
