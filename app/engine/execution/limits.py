"""Output limits: how large one node's output and one item's outputs may grow.

Without them a graph can double a text at every node (``{prev}{prev}``, twenty times) and
exhaust the memory of the whole process. A node over a limit fails with an error naming the
limit; the item fails, other items go on.

Sizes are those of the stored text: UTF-8 bytes of a string, the JSON text of anything else.
A string's size costs nothing when it is ASCII (the common case) and one encoding otherwise.

>>> check_node("t", "x" * 10, OutputLimits(node_bytes=8))
Traceback (most recent call last):
...
app.engine.errors.OutputLimitError: output of node 't' is 10 bytes, over the node output limit of 8 (max_node_output_bytes)
"""  # noqa: E501

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from app.engine.errors import OutputLimitError


@dataclass(frozen=True, slots=True)
class OutputLimits:
    """Byte limits on outputs; the setting names are what error messages tell users to raise."""

    node_bytes: int = 1 << 20
    item_bytes: int = 8 << 20
    node_setting: str = "max_node_output_bytes"
    item_setting: str = "max_item_output_bytes"


def text_size(text: str) -> int:
    """UTF-8 size of ``text`` (``isascii`` is O(1), so ASCII text is not re-encoded)."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def value_size(value: Any) -> int:
    """Size of an output as stored: a string's bytes, else its JSON text's."""
    if isinstance(value, str):
        return text_size(value)
    return len(json.dumps(value, default=str))


def check_node(node: str, value: Any, limits: OutputLimits) -> int:
    """The output's size; ``OutputLimitError`` if it is over the node limit."""
    size = value_size(value)
    if size > limits.node_bytes:
        raise OutputLimitError(
            f"output of node {node!r} is {size:,} bytes, over the node output limit of "
            f"{limits.node_bytes:,} ({limits.node_setting})"
        )
    return size


def check_item(node: str, total: int, limits: OutputLimits) -> None:
    """``OutputLimitError`` if the item's outputs, ``node``'s included, are over the limit."""
    if total > limits.item_bytes:
        raise OutputLimitError(
            f"outputs of this item reach {total:,} bytes with node {node!r}, over the item "
            f"output limit of {limits.item_bytes:,} ({limits.item_setting})"
        )


def check_rendered(subject: str, parts: list[str], limits: OutputLimits) -> None:
    """Refuse a rendering before joining it: ``parts`` hold at least their length in bytes."""
    size = sum(map(len, parts))
    if size > limits.node_bytes:
        raise OutputLimitError(
            f"{subject} would be at least {size:,} bytes, over the node output limit of "
            f"{limits.node_bytes:,} ({limits.node_setting})"
        )


OMITTED = "(omitted)"


def kept_inputs(inputs: dict[str, Any], limits: OutputLimits) -> dict[str, Any]:
    """A failed node's rendered inputs as kept: whole within the node output limit, else one
    ``"(omitted)"`` entry saying how large they were (a failure is not made larger than an
    output may be).

    >>> kept_inputs({"prompt": "x" * 10}, OutputLimits(node_bytes=8))
    {'(omitted)': 'rendered inputs are 24 bytes, over the node output limit of 8 (max_node_output_bytes)'}
    """  # noqa: E501
    size = value_size(inputs)
    if size <= limits.node_bytes:
        return inputs
    return {
        OMITTED: f"rendered inputs are {size:,} bytes, over the node output limit of "
        f"{limits.node_bytes:,} ({limits.node_setting})"
    }


# RE2 spends at most about 0.12 ns per byte of text and instruction of program (measured on
# hostile patterns), so this much work is about a second of one core, the most one match may take.
MAX_MATCH_WORK = 1 << 33


def check_match_input(node: str, text: str, limits: OutputLimits, weight: int = 0) -> None:
    """Refuse to classify a text longer than any node may output, or one whose matching work
    (its length times the patterns' program sizes, ``weight``) could take over a second."""
    size = text_size(text)
    if size > limits.node_bytes:
        raise OutputLimitError(
            f"input of node {node!r} is {size:,} bytes, over the node output limit of "
            f"{limits.node_bytes:,} ({limits.node_setting})"
        )
    if len(text) * weight > MAX_MATCH_WORK:
        raise OutputLimitError(
            f"input of node {node!r} is too long for its patterns: {len(text):,} characters "
            f"times {weight:,} pattern instructions is over the matching budget of "
            f"{MAX_MATCH_WORK:,} (about a second); shorten the text or the patterns"
        )
