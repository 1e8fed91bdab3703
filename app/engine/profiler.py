"""Chrome Trace Event profiles of runs (open the file in Perfetto or chrome://tracing).

Each endpoint alias is a process (lane group) whose threads are its concurrency slots: a
model call is drawn from the moment it had its slot to its answer, so an alias never shows
more call lanes than calls it had in flight at once (at most its ``max_concurrent``). The wait
for a slot or rate budget before the call is an async slice of its own in the same group
(category ``queue``), and a node whose call has no measured answer (it failed) is an async
slice too. Other ops share an ``engine`` lane group. Counters show in-flight calls and queued
calls per alias.

>>> profiler = TraceProfiler()
>>> profiler.to_dict()["traceEvents"]
[]
"""

from __future__ import annotations

import heapq
import itertools
import json
import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.engine.execution.settings import ExecutionSettings
from app.engine.records import NodeRecord, NodeStatus

ENGINE_LANE = "engine"
# A call may take a slot this much before the previous call in it is seen to end: the slot is
# freed a few statements before the node's end is stamped, and a busy process (a collection, a
# preempted thread) can stamp later still. Within ``SLOT_TOLERANCE_S`` a slot counts as free;
# when an alias's every slot (its ``max_concurrent``, when known) is drawn, a call overlapping
# the earliest to free by up to ``CAPPED_SKEW_S`` takes it (the gate let no more calls run).
SLOT_TOLERANCE_S = 0.002
CAPPED_SKEW_S = 0.05


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
    latency_s: float | None  # the answered call's, from its slot to its answer

    @property
    def call_start(self) -> float | None:
        """When the answered call had its slot (``None``: no answered call was measured)."""
        if self.alias is None or not self.latency_s or self.status != NodeStatus.SUCCEEDED:
            return None
        return max(self.start, self.end - self.latency_s)

    @property
    def queued_from(self) -> float:
        """When the answered call began to wait for its slot and rate budget."""
        call_start = self.call_start
        assert call_start is not None
        return max(self.start, call_start - self.queued_s)


class TraceProfiler:
    """Collects a span per finished node; ``save(path)`` writes the trace.

    Use as ``with TraceProfiler("trace.json"):`` (profiles every run inside the block and
    writes the file at the end) or pass ``profiler=`` to ``run``/``bind``.
    """

    def __init__(
        self,
        path: str | Path | None = None,
        origin: float | None = None,
        slots: Mapping[str, int] | None = None,
    ) -> None:
        """``origin`` is time zero of the trace, on the clock of the records (default: now on
        the monotonic clock the engine uses); ``slots`` the concurrency cap of each alias,
        where known."""
        self.path = Path(path) if path is not None else None
        self.origin = time.monotonic() if origin is None else origin
        self.slots = dict(slots or {})
        self._spans: list[_Span] = []
        self._context: ExecutionSettings | None = None
        self._ids = itertools.count(1)

    def node_finished(self, run: str, record: NodeRecord, op: str, alias: str | None) -> None:
        if record.started_at is None or record.ended_at is None:
            return
        usage = record.usage
        self._spans.append(
            _Span(
                run,
                record.node,
                op,
                alias,
                record.started_at,
                record.ended_at,
                usage.queued_s if usage else 0.0,
                record.status.value,
                record.attempts,
                usage.latency_s if usage else None,
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
        """The trace in Chrome Trace Event JSON form; ``metadata.call_lanes`` is the number of
        call lanes of each alias."""
        lanes = sorted({span.alias or ENGINE_LANE for span in self._spans})
        events: list[dict[str, Any]] = []
        call_lanes: dict[str, int] = {}
        for pid, lane in enumerate(lanes, start=1):
            label = f"endpoint {lane}" if lane != ENGINE_LANE else lane
            events.append(_meta("process_name", pid, 0, label))
            lane_events, slots = self._lane_events(lane, pid)
            events += lane_events
            if lane != ENGINE_LANE:
                call_lanes[lane] = slots
        return {
            "traceEvents": events,
            "displayTimeUnit": "ms",
            "metadata": {"spans": len(self._spans), "call_lanes": call_lanes},
        }

    def _lane_events(self, lane: str, pid: int) -> tuple[list[dict[str, Any]], int]:
        mine = [s for s in self._spans if (s.alias or ENGINE_LANE) == lane]
        if lane == ENGINE_LANE:
            events, _, slots = self._slotted([(s, s.start) for s in mine], pid, _Fit(0.0))
            return events, slots
        calls = [(s, start) for s in mine if (start := s.call_start) is not None]
        fit = _Fit(SLOT_TOLERANCE_S, self.slots.get(lane))
        events, drawn, slots = self._slotted(calls, pid, fit)
        events += self._waits(mine, pid)
        events += self._counters(drawn, pid, lane)
        return events, slots

    def _slotted(
        self, spans: list[tuple[_Span, float]], pid: int, fit: _Fit
    ) -> tuple[list[dict[str, Any]], list[tuple[_Span, float]], int]:
        """Spans laid out on the fewest threads, each drawn from its given start (or from
        where its thread is free); the events, each span with where it was drawn from, and
        the number of threads."""
        slots: list[tuple[float, int]] = []  # heap of (end of the slot's last span, thread id)
        events: list[dict[str, Any]] = []
        drawn: list[tuple[_Span, float]] = []
        for span, start in sorted(spans, key=lambda pair: pair[1]):
            tid, start = fit.place(slots, start, span.end)
            events.append(self._span_event(span, start, pid, tid))
            drawn.append((span, start))
        events += [_meta("thread_name", pid, tid, f"slot {tid}") for tid in range(len(slots))]
        return events, drawn, len(slots)

    def _span_event(self, span: _Span, start: float, pid: int, tid: int) -> dict[str, Any]:
        return {
            "name": span.node,
            "cat": span.op,
            "ph": "X",
            "ts": self._us(start),
            "dur": max(1.0, (span.end - start) * 1e6),
            "pid": pid,
            "tid": tid,
            "args": {
                "run": span.run,
                "status": span.status,
                "attempts": span.attempts,
                "queued_s": span.queued_s,
            },
        }

    def _waits(self, spans: list[_Span], pid: int) -> list[dict[str, Any]]:
        """Async slices: each call's wait for its slot, and nodes with no answered call."""
        events: list[dict[str, Any]] = []
        for span in spans:
            call_start = span.call_start
            if call_start is None:
                events += self._async(span, span.op, span.node, span.start, span.end, pid)
            elif call_start > span.queued_from:
                name = f"{span.node} queued"
                events += self._async(span, "queue", name, span.queued_from, call_start, pid)
        return events

    def _async(
        self, span: _Span, cat: str, name: str, start: float, end: float, pid: int
    ) -> list[dict[str, Any]]:
        ident = f"0x{next(self._ids):x}"
        args = {"run": span.run, "status": span.status, "attempts": span.attempts}
        begin = {"name": name, "cat": cat, "ph": "b", "id": ident, "pid": pid, "tid": 0}
        return [
            {**begin, "ts": self._us(start), "args": args},
            {**begin, "ph": "e", "ts": self._us(max(end, start))},
        ]

    def _counters(
        self, calls: list[tuple[_Span, float]], pid: int, alias: str
    ) -> list[dict[str, Any]]:
        changes: dict[float, list[int]] = defaultdict(lambda: [0, 0])  # time -> [in flight, queued]
        for span, call_start in calls:
            changes[min(span.queued_from, call_start)][1] += 1
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


@dataclass(frozen=True, slots=True)
class _Fit:
    """How spans take threads: free within ``tolerance``; at ``cap`` threads, skewed by up to
    :data:`CAPPED_SKEW_S`."""

    tolerance: float
    cap: int | None = None

    def place(self, slots: list[tuple[float, int]], start: float, end: float) -> tuple[int, float]:
        """The thread that has been free longest (a new one if none is free at ``start``), and
        where the span is drawn from (never before that thread is free)."""
        if slots:
            free_at, tid = slots[0]
            slack = CAPPED_SKEW_S if self.cap is not None and len(slots) >= self.cap else 0.0
            if free_at <= start + max(self.tolerance, slack):
                heapq.heapreplace(slots, (max(end, free_at), tid))
                return tid, min(max(start, free_at), end)
        tid = len(slots)
        heapq.heappush(slots, (end, tid))
        return tid, start


def _meta(name: str, pid: int, tid: int, label: str) -> dict[str, Any]:
    return {"name": name, "ph": "M", "pid": pid, "tid": tid, "args": {"name": label}}
