"""The plain progress lines of ``inf-engine jobs submit`` when stdout is not a terminal."""

from __future__ import annotations

import io

from rich.console import Console

from app.cli.follow import FAILURES_SHOWN, QUIET_LINE_S, BarDisplay, LineDisplay
from app.client import Event


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def progress(event_id: int, succeeded: int, failed: int = 0, kind: str = "progress") -> Event:
    counts = {"total": 10, "succeeded": succeeded, "failed": failed, "cancelled": 0}
    return Event(event_id, kind, {"counts": counts, "throughput_per_s": 2.5, "eta_s": 4.0})


def test_a_line_when_the_count_moves_or_after_a_quiet_while() -> None:
    out, clock = io.StringIO(), Clock()
    display = LineDisplay(10, out, clock)

    for event_id, succeeded in enumerate([2, 2, 5], start=1):
        display.show(progress(event_id, succeeded))
        clock.now += 1
    clock.now += QUIET_LINE_S
    display.show(progress(4, 5))
    display.show(progress(5, 10, kind="job_completed"))

    assert out.getvalue().splitlines() == [
        "progress 2/10 succeeded=2 failed=0 2.5 items/s eta 4s",
        "progress 5/10 succeeded=5 failed=0 2.5 items/s eta 4s",
        "progress 5/10 succeeded=5 failed=0 2.5 items/s eta 4s",
        "progress 10/10 succeeded=10 failed=0 2.5 items/s eta 4s",
        "job completed: 10 items, 10 succeeded, 0 failed, 0 cancelled",
    ]


def test_only_the_first_item_failures_are_printed() -> None:
    out = io.StringIO()
    display = LineDisplay(10, out)

    for index in range(FAILURES_SHOWN + 3):
        display.show(Event(index + 1, "item_failed", {"index": index, "error": "llm: boom"}))
        display.show(Event(100 + index, "items_succeeded", {"indexes": [50 + index]}))

    lines = out.getvalue().splitlines()
    assert lines[:2] == ["item 0 failed: llm: boom", "item 1 failed: llm: boom"]
    assert len(lines) == FAILURES_SHOWN + 1
    assert lines[-1] == "more items failed: their errors are in the results"


def test_the_bar_advances_by_every_item_an_event_reports() -> None:
    console = Console(file=io.StringIO(), force_terminal=False)
    bar = BarDisplay(console, 10)

    with bar:
        bar.show(Event(1, "items_succeeded", {"indexes": [0, 1, 2]}))
        bar.show(Event(2, "item_failed", {"index": 3, "error": "llm: boom"}))
        bar.show(Event(3, "items_succeeded", {"indexes": [4, 5]}))

    task = bar.progress.tasks[0]
    assert (task.completed, task.fields["failed"]) == (6, 1)
