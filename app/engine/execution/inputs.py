"""Match call arguments to a graph's declared inputs and check their JSON types."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from app.engine.errors import InputError
from app.engine.graph.model import InputSpec

_CHECKS: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "any": lambda v: True,
}


def check_inputs(specs: Mapping[str, InputSpec], values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` as a dict if they match ``specs``; else ``InputError`` naming each field."""
    problems = [f"missing input {name!r}" for name in specs if name not in values]
    problems += [f"unknown input {name!r}" for name in values if name not in specs]
    problems += [
        f"input {name!r} must be {spec.type}, got {type(values[name]).__name__}"
        for name, spec in specs.items()
        if name in values and not _CHECKS[spec.type](values[name])
    ]
    if problems:
        raise InputError("; ".join(problems))
    return dict(values)


def bind_positional(specs: Mapping[str, InputSpec], args: tuple[Any, ...]) -> dict[str, Any]:
    """Positional call arguments, in declaration order, checked against ``specs``."""
    if len(args) != len(specs):
        names = ", ".join(specs) or "none"
        raise InputError(f"expected {len(specs)} input(s) ({names}), got {len(args)}")
    return check_inputs(specs, dict(zip(specs, args, strict=True)))


def bind_arguments(
    specs: Mapping[str, InputSpec], args: tuple[Any, ...], named: Mapping[str, Any]
) -> dict[str, Any]:
    """Positional arguments in declaration order, then keywords, as a Python call binds them.

    >>> specs = {"q": InputSpec(), "ctx": InputSpec()}
    >>> bind_arguments(specs, ("why?",), {"ctx": "sky"})
    {'q': 'why?', 'ctx': 'sky'}
    """
    if not named:
        return bind_positional(specs, args)
    if len(args) > len(specs):
        raise InputError(f"expected at most {len(specs)} positional input(s), got {len(args)}")
    values = dict(zip(specs, args, strict=False))
    twice = [
        f"input {name!r} given twice (by position and by keyword)"
        for name in named
        if name in values
    ]
    if twice:
        raise InputError("; ".join(twice))
    return check_inputs(specs, {**values, **named})


def bind_item(specs: Mapping[str, InputSpec], item: Any) -> dict[str, Any]:
    """One batch item: the bare value for a one-input graph, else a dict or a tuple."""
    if len(specs) == 1 and not (isinstance(item, dict) and item.keys() == specs.keys()):
        return bind_positional(specs, (item,))
    if isinstance(item, Mapping):
        return check_inputs(specs, item)
    if isinstance(item, tuple | list):
        return bind_positional(specs, tuple(item))
    raise InputError(f"a batch item for inputs {', '.join(specs)} must be a dict or a tuple")
