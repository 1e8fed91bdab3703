"""Following a job to its end: a live progress bar on a terminal, plain lines elsewhere.

Both are fed by the job's events: ``items_succeeded``/``item_failed`` advance the count,
``progress`` (counts, throughput, ETA) and the terminal event set it to the service's figures.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, Protocol, Self, TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from app.cli.output import duration, rate
from app.client import Client, Event
from app.lifecycle import EventKind, ItemStatus, JobStatus

FAILURES_SHOWN = 5
OUTCOMES = (ItemStatus.SUCCEEDED, ItemStatus.FAILED, ItemStatus.CANCELLED)
QUIET_LINE_S = 30.0  # an unchanged count is printed again after this long, to show liveness


class Display(Protocol):
    def __enter__(self) -> Self: ...

    def __exit__(self, *exc: object) -> None: ...

    def show(self, event: Event) -> None: ...


def follow_job(client: Client, job: dict[str, Any]) -> str:
    """Show the job's progress until it ends; its final status."""
    console = Console()
    total = int(job["counts"]["total"])
    display: Display = BarDisplay(console, total) if console.is_terminal else LineDisplay(total)
    last: Event | None = None
    with display:
        for event in client.events(job["id"]):
            display.show(event)
            last = event
    if last is not None and last.terminal:
        return last.kind.removeprefix("job_")
    return str(client.job(job["id"])["status"])


def done_of(counts: dict[str, Any]) -> int:
    """Items that finished, whatever their outcome."""
    return int(sum(counts.get(name, 0) for name in OUTCOMES))


def progress_line(data: dict[str, Any], total: int) -> str:
    """``progress 120/1000 succeeded=118 failed=2 12.3 items/s eta 71s``.

    >>> progress_line({"counts": {"succeeded": 3, "failed": 1, "cancelled": 0},
    ...                "throughput_per_s": 2.0, "eta_s": 3.0}, 10)
    'progress 4/10 succeeded=3 failed=1 2.0 items/s eta 3s'
    """
    counts = data.get("counts", {})
    succeeded, failed, cancelled = (counts.get(name, 0) for name in OUTCOMES)
    cancelled_part = f" cancelled={cancelled}" if cancelled else ""
    return (
        f"progress {done_of(counts)}/{counts.get('total', total)} "
        f"succeeded={succeeded} failed={failed}{cancelled_part} "
        f"{rate(data.get('throughput_per_s'))} eta {duration(data.get('eta_s'))}"
    )


def end_line(event: Event) -> str:
    """``job completed: 1000 items, 998 succeeded, 2 failed`` (and the job's error, if any)."""
    counts = event.data.get("counts", {})
    parts = [f"{counts.get('total', 0)} items"]
    parts += [f"{counts.get(name, 0)} {name}" for name in OUTCOMES]
    error = event.data.get("error")
    ending = f" ({error})" if error else ""
    return f"job {event.kind.removeprefix('job_')}: {', '.join(parts)}{ending}"


class Failures:
    """The first few item failures, as lines; then a note that there are more."""

    def __init__(self, emit: Callable[[str], None]) -> None:
        self.emit = emit
        self.count = 0

    def add(self, event: Event) -> None:
        self.count += 1
        if self.count <= FAILURES_SHOWN:
            self.emit(f"item {event.data.get('index')} failed: {event.data.get('error')}")
        elif self.count == FAILURES_SHOWN + 1:
            self.emit("more items failed: their errors are in the results")


class LineDisplay:
    """Plain lines for logs and CI: a ``progress`` line when the count moved (or after a quiet
    while), the first item failures, and the job's end."""

    def __init__(
        self, total: int, out: TextIO | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.total = total
        self.out = out or sys.stdout
        self.clock = clock
        self.failures = Failures(self._line)
        self.shown: tuple[int, float] | None = None  # (done, when) of the last progress line

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.out.flush()

    def show(self, event: Event) -> None:
        if event.kind == EventKind.ITEM_FAILED:
            self.failures.add(event)
        elif event.kind == EventKind.PROGRESS or event.terminal:
            self._progress(event.data)
        if event.terminal:
            self._line(end_line(event))

    def _progress(self, data: dict[str, Any]) -> None:
        done, now = done_of(data.get("counts", {})), self.clock()
        if self.shown is not None and self.shown[0] == done and now - self.shown[1] < QUIET_LINE_S:
            return
        self.shown = (done, now)
        self._line(progress_line(data, self.total))

    def _line(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()


class BarDisplay:
    """A rich progress bar: done/total, failures, throughput and ETA."""

    def __init__(self, console: Console, total: int) -> None:
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[failed]} failed"),
            TextColumn("{task.fields[rate]}"),
            TextColumn("eta {task.fields[eta]}"),
            console=console,
        )
        fields: dict[str, Any] = {"rate": rate(None), "eta": duration(None)}
        self.task = self.progress.add_task(JobStatus.RUNNING, total=total, failed=0, **fields)
        self.failures = Failures(lambda text: console.print(text, markup=False, highlight=False))
        self.failed = 0

    def __enter__(self) -> Self:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def show(self, event: Event) -> None:
        if event.kind in (EventKind.ITEMS_SUCCEEDED, EventKind.ITEM_FAILED):
            self._items(event)
        elif event.kind == EventKind.PROGRESS or event.terminal:
            self._sync(event.data)
        if event.terminal:
            self.progress.update(self.task, description=event.kind.removeprefix("job_"))

    def _items(self, event: Event) -> None:
        if event.kind == EventKind.ITEM_FAILED:
            self.failed += 1
            self.failures.add(event)
        self.progress.update(self.task, advance=len(event.items), failed=self.failed)

    def _sync(self, data: dict[str, Any]) -> None:
        counts = data.get("counts", {})
        self.failed = int(counts.get(ItemStatus.FAILED, self.failed))
        self.progress.update(
            self.task,
            completed=done_of(counts),
            failed=self.failed,
            rate=rate(data.get("throughput_per_s")),
            eta=duration(data.get("eta_s")),
        )
