"""What the database can store, checked before a row is queued for writing.

Postgres refuses the NUL character (``\\u0000``) in JSON and in text; SQLite takes it. Rows are
checked the same way on every backend, so that a job's results do not depend on the database:
a node output that contains a NUL fails that node (and so its item) with :data:`NUL_ERROR`,
and a NUL in a message (an error, a retry reason, an event) or in a failed node's rendered
inputs is written as the six characters ``\\u0000``.
"""

from __future__ import annotations

from typing import Any

import orjson

from app.db.repositories.results import ItemRow, NodeRow
from app.lifecycle import ItemStatus

NUL = "\x00"
NUL_ESCAPED = "\\u0000"
UNSTORABLE = "UnstorableOutput"
NUL_ERROR = (
    "output cannot be stored: contains a NUL character (\\u0000), "
    "which the database does not accept"
)
_PLAIN = (int, float, bool, type(None))


def has_nul(value: Any) -> bool:
    """Whether a JSON value holds a NUL character in any string or key.

    One orjson encoding and one substring test on the common path; the exact walk runs only
    when the encoding shows ``\\u0000``, which a literal backslash-u text also produces.
    """
    if isinstance(value, str):
        return NUL in value
    if isinstance(value, _PLAIN):
        return False
    try:
        encoded = _encoded(value)
    except TypeError:  # not JSON: the writer finds out and stores a failure instead
        return False
    return b"\\u0000" in encoded and _walk_has_nul(value)


def _encoded(value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except TypeError:  # keys that are not strings, which the database's encoder accepts
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)


def _walk_has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return NUL in value
    if isinstance(value, dict):
        return any(_walk_has_nul(k) or _walk_has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_walk_has_nul(v) for v in value)
    return False


def escaped(text: str | None) -> str | None:
    """A message with each NUL written as ``\\u0000``."""
    return text.replace(NUL, NUL_ESCAPED) if text and NUL in text else text


def escaped_value(value: Any) -> Any:
    """A JSON value (an event's data) with each NUL in its strings and keys escaped."""
    if isinstance(value, str):
        return escaped(value)
    if isinstance(value, dict):
        return {escaped_value(k): escaped_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [escaped_value(v) for v in value]
    return value


def fail_node(row: NodeRow, error: str, *, keep_usage: bool = True) -> None:
    """Turn a node row that cannot be stored into that node's failure; without its usage
    (model, tokens, cost, timings) when one of those may be what was refused."""
    row.status = ItemStatus.FAILED.value
    row.output = None
    row.error = error
    row.error_type = UNSTORABLE
    if not keep_usage:
        row.model, row.input_tokens, row.output_tokens, row.cost = None, 0, 0, 0.0
        row.finish_reason = row.retries = row.inputs = None
        row.duration_s = row.latency_s = row.queued_s = None


def size(value: Any) -> int:
    """About how many bytes ``value`` takes stored as JSON (for the writer's memory bound).

    >>> size("abc"), size({"a": 1}), size(None)
    (3, 7, 0)
    """
    if isinstance(value, str):
        return len(value)
    if isinstance(value, _PLAIN):
        return 0
    try:
        return len(_encoded(value))
    except TypeError:  # not JSON: it will not be stored as it is anyway
        return 0


def check_node(row: NodeRow) -> str | None:
    """Make a node row storable in place; the failure (``node: type: error``) if it had to fail."""
    row.error = escaped(row.error)
    row.model = escaped(row.model)
    row.finish_reason = escaped(row.finish_reason)
    if row.retries:
        row.retries = [escaped(reason) or "" for reason in row.retries]
    if has_nul(row.inputs):  # what a failed node read, shown to debug it: escaped, not refused
        row.inputs = escaped_value(row.inputs)
    if not has_nul(row.output):
        return None
    fail_node(row, NUL_ERROR)
    return failure_line(row)


def failure_line(row: NodeRow) -> str:
    """How an item's error names one failed node."""
    return f"{row.node_id}: {row.error_type}: {row.error}"


def check_item(row: ItemRow, failures: list[str]) -> None:
    """Make an item row storable in place: it fails if one of its nodes could not be stored
    (``failures``) or its output cannot be; outputs that cannot be stored become ``null``."""
    row.error = escaped(row.error)
    unstorable = has_nul(row.output)
    if unstorable:
        row.output = _storable_outputs(row.output)
        row.output_bytes = None  # the size of the output given, not of what is stored
    if row.status == ItemStatus.CANCELLED or not (failures or unstorable):
        return
    if not failures:
        failures = [f"output: {UNSTORABLE}: {NUL_ERROR}"]
    row.status = ItemStatus.FAILED.value
    row.error = "; ".join([row.error, *failures] if row.error else failures)


def _storable_outputs(output: Any) -> Any:
    if not isinstance(output, dict):
        return None
    return {name: None if has_nul(value) else value for name, value in output.items()}
