"""Chrome Trace Event profiles of runs (open the file in Perfetto or chrome://tracing).

Each endpoint alias is a process (lane group) whose threads are concurrency slots; other
ops share an ``engine`` lane group. Counters show in-flight calls and queued calls per alias.

>>> profiler = TraceProfiler()
>>> profiler.to_dict()["traceEvents"]
[]
"""

from __future__ import annotations

import heapq
import json
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.engine.execution.settings import ExecutionSettings
from app.engine.records import NodeRecord

ENGINE_LANE = "engine"


@dataclass(frozen=True, slots=True)
class _Span:
    run: str
    node: str
    op: str
    alias: str | None
    start: float
    end: float
    queued_s: float
    status: str
    attempts: int


class TraceProfiler:
    """Collects a span per finished node; ``save(path)`` writes the trace.

    Use as ``with TraceProfiler("trace.json"):`` (profiles every run inside the block and
    writes the file at the end) or pass ``profiler=`` to ``run``/``bind``.
    """

    def __init__(self, path: str | Path | None = None, origin: float | None = None) -> None:
        """``origin`` is time zero of the trace, on the clock of the records (default: now on
        the monotonic clock the engine uses)."""
        self.path = Path(path) if path is not None else None
        self.origin = time.monotonic() if origin is None else origin
        self._spans: list[_Span] = []
        self._context: ExecutionSettings | None = None

    def node_finished(self, run: str, record: NodeRecord, op: str, alias: str | None) -> None:
        if record.started_at is None or record.ended_at is None:
            return
        queued = record.usage.queued_s if record.usage else 0.0
        self._spans.append(
            _Span(
                run,
                record.node,
                op,
                alias,
                record.started_at,
                record.ended_at,
                queued,
                record.status.value,
                record.attempts,
            )
        )

    def __enter__(self) -> TraceProfiler:
        self._context = ExecutionSettings(profiler=self)
        self._context.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._context is not None:
            self._context.__exit__(*exc)
            self._context = None
        if self.path is not None:
            self.save(self.path)

    def save(self, path: str | Path) -> Path:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(self.to_dict()), encoding="utf-8")
        return target

    def to_dict(self) -> dict[str, Any]:
        """The trace in Chrome Trace Event JSON form."""
        lanes = sorted({span.alias or ENGINE_LANE for span in self._spans})
        pids = {lane: index + 1 for index, lane in enumerate(lanes)}
        events: list[dict[str, Any]] = []
        for lane in lanes:
            events.append(
                _meta(
                    "process_name",
                    pids[lane],
                    0,
                    f"endpoint {lane}" if lane != ENGINE_LANE else lane,
                )
            )
            events += self._lane_events(lane, pids[lane])
        return {
            "traceEvents": events,
            "displayTimeUnit": "ms",
            "metadata": {"spans": len(self._spans)},
        }

    def _lane_events(self, lane: str, pid: int) -> list[dict[str, Any]]:
        spans = sorted(
            (s for s in self._spans if (s.alias or ENGINE_LANE) == lane), key=lambda s: s.start
        )
        slots: list[tuple[float, int]] = []  # heap of (end of the slot's last span, thread id)
        events: list[dict[str, Any]] = []
        for span in spans:
            tid = _free_slot(slots, span.start, span.end)
            events.append(self._span_event(span, pid, tid))
        events += [_meta("thread_name", pid, tid, f"slot {tid}") for tid in range(len(slots))]
        if lane != ENGINE_LANE:
            events += self._counters(spans, pid, lane)
        return events

    def _span_event(self, span: _Span, pid: int, tid: int) -> dict[str, Any]:
        return {
            "name": span.node,
            "cat": span.op,
            "ph": "X",
            "ts": self._us(span.start),
            "dur": max(1.0, (span.end - span.start) * 1e6),
            "pid": pid,
            "tid": tid,
            "args": {
                "run": span.run,
                "status": span.status,
                "attempts": span.attempts,
                "queued_s": span.queued_s,
            },
        }

    def _counters(self, spans: list[_Span], pid: int, alias: str) -> list[dict[str, Any]]:
        changes: dict[float, list[int]] = defaultdict(lambda: [0, 0])  # time -> [in flight, queued]
        for span in spans:
            call_start = span.start + span.queued_s
            changes[span.start][1] += 1
            changes[call_start][1] -= 1
            changes[call_start][0] += 1
            changes[span.end][0] -= 1
        events, in_flight, queued = [], 0, 0
        for moment in sorted(changes):
            in_flight += changes[moment][0]
            queued += changes[moment][1]
            args = {"in_flight": in_flight, "queued": queued}
            events.append(
                {
                    "name": f"{alias} calls",
                    "ph": "C",
                    "ts": self._us(moment),
                    "pid": pid,
                    "args": args,
                }
            )
        return events

    def _us(self, moment: float) -> float:
        return (moment - self.origin) * 1e6


def _free_slot(slots: list[tuple[float, int]], start: float, end: float) -> int:
    """The thread that has been free longest (a new one if none is free at ``start``)."""
    if slots and slots[0][0] <= start:
        _, tid = heapq.heapreplace(slots, (end, slots[0][1]))
        return tid
    tid = len(slots)
    heapq.heappush(slots, (end, tid))
    return tid


def _meta(name: str, pid: int, tid: int, label: str) -> dict[str, Any]:
    return {"name": name, "ph": "M", "pid": pid, "tid": tid, "args": {"name": label}}
