"""Rows are made storable before they are queued: a NUL fails a node output, messages escape it."""

from __future__ import annotations

from typing import Any

import pytest

from app.db.repositories.results import ItemRow, NodeRow
from app.services.runner.storable import NUL_ERROR, check_item, check_node, escaped_value, has_nul


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("a\x00b", True),
        ({"deep": [1, {"x": "\x00"}]}, True),
        ({"key\x00": 1}, True),
        ("a\\u0000b", False),  # the six characters, as a user may write them: storable
        ({"text": "a\\u0000b"}, False),
        ({"text": "plain", "n": 3, "ok": True, "none": None}, False),
        (42, False),
        (None, False),
    ],
)
def test_has_nul_finds_a_nul_anywhere_and_nothing_else(value: Any, expected: bool) -> None:
    assert has_nul(value) is expected


def node(output: Any, error: str | None = None) -> NodeRow:
    return NodeRow("j", 3, "parsed", "succeeded", output, error, None, 1, None, None, 0, 0, 0.0,
                   0.1, None, None)  # fmt: skip


def test_a_node_output_with_a_nul_fails_the_node() -> None:
    row = node({"text": "a\x00b"})

    assert check_node(row) == f"parsed: UnstorableOutput: {NUL_ERROR}"
    assert (row.status, row.output, row.error) == ("failed", None, NUL_ERROR)


def test_a_nul_in_an_error_text_is_escaped_and_the_node_keeps_its_status() -> None:
    row = node(None, error="bad input 'x\x00y'")
    row.status = "failed"

    assert check_node(row) is None
    assert (row.status, row.error) == ("failed", "bad input 'x\\u0000y'")


def test_an_item_with_an_unstorable_node_fails_naming_it_and_keeps_its_other_outputs() -> None:
    row = ItemRow("j", 3, "succeeded", {"parsed": "a\x00b", "answer": "fine"}, None, 5, 2, 0.1)

    check_item(row, [f"parsed: UnstorableOutput: {NUL_ERROR}"])

    assert row.status == "failed"
    assert row.error == f"parsed: UnstorableOutput: {NUL_ERROR}"
    assert row.output == {"parsed": None, "answer": "fine"}


def test_an_item_whose_output_changes_to_be_storable_drops_its_size() -> None:
    line = {"custom_id": "a", "response": {"body": "x\x00"}}
    row = ItemRow("j", 3, "succeeded", line, None, 5, 2, 0.1, output_bytes=40)
    kept = ItemRow("j", 4, "succeeded", {"custom_id": "b"}, None, 5, 2, 0.1, output_bytes=18)

    check_item(row, [])
    check_item(kept, [])

    assert (row.output, row.output_bytes) == ({"custom_id": "a", "response": None}, None)
    assert kept.output_bytes == 18


def test_a_cancelled_item_stays_cancelled() -> None:
    row = ItemRow("j", 3, "cancelled", None, "cancelled", 0, 0, 0.0)

    check_item(row, ["parsed: UnstorableOutput: ..."])

    assert (row.status, row.error) == ("cancelled", "cancelled")


def test_event_data_is_escaped_not_dropped() -> None:
    assert escaped_value({"error": "x\x00", "n": [1, "\x00"]}) == {
        "error": "x\\u0000",
        "n": [1, "\\u0000"],
    }
