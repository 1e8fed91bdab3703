"""The result writer stores one success event per job and batch, in the stream's order."""

from __future__ import annotations

from app.services.runner.writer import ITEM_SUCCEEDED, coalesce_successes


def test_successes_are_grouped_per_job_at_the_first_ones_place() -> None:
    events = [
        ("a", "job_started", {}),
        ("a", ITEM_SUCCEEDED, {"index": 4}),
        ("b", ITEM_SUCCEEDED, {"index": 0}),
        ("a", "item_failed", {"index": 5, "error": "boom"}),
        ("a", ITEM_SUCCEEDED, {"index": 2}),
        ("a", "job_completed", {}),
    ]

    assert coalesce_successes(events) == [
        ("a", "job_started", {}),
        ("a", "items_succeeded", {"indexes": [4, 2]}),
        ("b", "items_succeeded", {"indexes": [0]}),
        ("a", "item_failed", {"index": 5, "error": "boom"}),
        ("a", "job_completed", {}),
    ]


def test_a_batch_without_successes_is_unchanged() -> None:
    events = [("a", "progress", {"counts": {}}), ("a", "job_cancelled", {})]

    assert coalesce_successes(events) == events
