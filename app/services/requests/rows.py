"""A job's input row: the graph's inputs and, beside them, the row's optional identity.

A row may carry ``custom_id`` (a string, unique per job) and ``metadata`` (an object of at
most 16 string values, keys of 1 to 64 characters and values of at most 512, as OpenAI's
``metadata``). Both are kept with the item and answered with its result; the graph never
sees them. A graph that declares an input of either name keeps it as that input.

>>> identified({"text": InputSpec()}, {"text": "a", "custom_id": "r1"}, "inputs[0]")
NewItem(input={'text': 'a'}, custom_id='r1', metadata=None)
>>> first_repeat([NewItem({}, "a"), NewItem({}, "b"), NewItem({}, "a")], 0, {})
(2, 'a', 0)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

from app.db.repositories.jobs import NewItem
from app.engine.graph.model import InputSpec
from app.services.errors import InvalidInput, Issue

CUSTOM_ID = "custom_id"
METADATA = "metadata"
MAX_CUSTOM_ID_CHARS = 512
MAX_METADATA_KEYS = 16
MAX_KEY_CHARS = 64
MAX_VALUE_CHARS = 512


def identified(
    specs: Mapping[str, InputSpec], row: dict[str, Any], where: str, line: int | None = None
) -> NewItem:
    """The row split into the graph's inputs (unchecked) and its checked identity; problems
    raise ``InvalidInput`` naming ``where.custom_id`` or ``where.metadata.<key>``."""
    if CUSTOM_ID not in row and METADATA not in row:
        return NewItem(row)
    own = [name for name in (CUSTOM_ID, METADATA) if name in row and name not in specs]
    if not own:
        return NewItem(row)
    values = {name: value for name, value in row.items() if name not in own}
    custom_id = _custom_id(row.get(CUSTOM_ID) if CUSTOM_ID in own else None, where, line)
    metadata = _metadata(row.get(METADATA) if METADATA in own else None, where, line)
    return NewItem(values, custom_id, metadata)


def _custom_id(value: Any, where: str, line: int | None) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not 0 < len(value) <= MAX_CUSTOM_ID_CHARS:
        got = f"{len(value)} characters" if isinstance(value, str) else _kind(value)
        message = f"must be a string of 1 to {MAX_CUSTOM_ID_CHARS} characters (got {got})"
        refuse(f"{where}.{CUSTOM_ID}", message, line)
    return value


def _metadata(value: Any, where: str, line: int | None) -> dict[str, str] | None:
    field = f"{where}.{METADATA}"
    if value is None:
        return None
    if not isinstance(value, dict):
        refuse(field, f"must be a JSON object of strings (got {_kind(value)})", line)
    if len(value) > MAX_METADATA_KEYS:
        refuse(field, f"has {len(value)} keys; at most {MAX_METADATA_KEYS}", line)
    for key, text in value.items():
        _check_pair(field, key, text, line)
    return value or None


def _check_pair(field: str, key: Any, text: Any, line: int | None) -> None:
    if not isinstance(key, str) or not 0 < len(key) <= MAX_KEY_CHARS:
        refuse(field, f"keys are strings of 1 to {MAX_KEY_CHARS} characters", line)
    if not isinstance(text, str):
        refuse(f"{field}.{key}", f"must be a string (got {_kind(text)})", line)
    if len(text) > MAX_VALUE_CHARS:
        refuse(f"{field}.{key}", f"is {len(text)} characters; at most {MAX_VALUE_CHARS}", line)


def first_repeat(
    items: Sequence[NewItem], start: int, earlier: Mapping[str, int]
) -> tuple[int, str, int] | None:
    """The first item (numbered from ``start``) whose custom_id an earlier one has, as (its
    index, the custom_id, the earlier index); ``earlier`` maps ids already stored to their
    index. ``None`` when every custom_id is new."""
    seen = dict(earlier)
    for index, item in enumerate(items, start=start):
        if item.custom_id is not None:
            first = seen.setdefault(item.custom_id, index)
            if first != index:
                return index, item.custom_id, first
    return None


def duplicate(index: int, custom_id: str, first: int, line: int | None = None) -> NoReturn:
    """Refuse item ``index`` for repeating the custom_id of item ``first``."""
    message = f"custom_id {custom_id!r} is also the custom_id of inputs[{first}]; it must be unique"
    refuse(f"inputs[{index}].{CUSTOM_ID}", message, line)


def refuse(field: str, message: str, line: int | None) -> NoReturn:
    """Raise ``InvalidInput`` naming ``field`` (and the JSONL ``line``, if any)."""
    where = f"line {line}: {field}" if line is not None else field
    raise InvalidInput(f"{where}: {message}", [Issue(field, message, line=line)])


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__
