"""The Chrome trace's call lanes: a call from its slot to its answer, its wait apart."""

from __future__ import annotations

import asyncio
from typing import Any

from app.engine import LLMUsage, NodeRecord, NodeStatus, TraceProfiler, run
from app.engine.testing import ScriptedLLM, scripted_manager
from tests.unit.engine.test_execution import Diamond


def call(node: str, queued_from: float, call_start: float, end: float) -> NodeRecord:
    usage = LLMUsage("fast", "m", 10, 5, end - call_start, "stop", 0.0, call_start - queued_from)
    return NodeRecord(node, NodeStatus.SUCCEEDED, started_at=queued_from, ended_at=end, usage=usage)


def events(profiler: TraceProfiler, phase: str) -> list[dict[str, Any]]:
    return [e for e in profiler.to_dict()["traceEvents"] if e["ph"] == phase]


def test_calls_queued_together_take_only_the_slots_they_ran_in() -> None:
    profiler = TraceProfiler(origin=0.0)
    for i in range(100):  # all ready at 0; four slots, one second per call
        start = float(i // 4)
        profiler.node_finished(str(i), call("n", 0.0, start, start + 1.0), "llm", "fast")

    calls = events(profiler, "X")
    assert len({e["tid"] for e in calls}) == 4
    assert profiler.to_dict()["metadata"]["call_lanes"] == {"fast": 4}
    assert all(e["dur"] == 1e6 for e in calls)
    waits = [e for e in events(profiler, "b") if e["cat"] == "queue"]
    assert len(waits) == 96  # the first four had a slot at once
    counters = [e["args"] for e in events(profiler, "C")]
    assert max(c["in_flight"] for c in counters) == 4
    assert max(c["queued"] for c in counters) == 96


def test_a_late_stamped_end_shares_the_slot_within_a_cap() -> None:
    skewed = [call("a", 0.0, 0.0, 1.010), call("b", 0.0, 1.0, 2.0)]  # a's end stamped 10 ms late
    loose, capped = TraceProfiler(origin=0.0), TraceProfiler(origin=0.0, slots={"fast": 1})
    for profiler in (loose, capped):
        for record in skewed:
            profiler.node_finished("0", record, "llm", "fast")

    assert len({e["tid"] for e in events(loose, "X")}) == 2  # no cap known: it overlaps
    second = [e for e in events(capped, "X") if e["name"] == "b"]
    assert {e["tid"] for e in events(capped, "X")} == {0}
    assert second[0]["ts"] == 1.010e6  # drawn from where the slot is free


def test_a_failed_call_is_a_slice_not_a_lane() -> None:
    profiler = TraceProfiler(origin=0.0)
    failed = NodeRecord("n", NodeStatus.FAILED, started_at=0.0, ended_at=2.0, attempts=3)
    profiler.node_finished("0", failed, "llm", "fast")

    assert events(profiler, "X") == []
    (begin,) = events(profiler, "b")
    assert (begin["name"], begin["cat"], begin["args"]["status"]) == ("n", "llm", "failed")


async def test_a_library_run_shows_at_most_max_concurrent_lanes() -> None:
    fast, smart = ScriptedLLM(latency_s=0.01), ScriptedLLM(latency_s=0.01)
    manager = scripted_manager({"fast": fast, "smart": smart}, max_concurrent=3)
    profiler = TraceProfiler(slots={"fast": 3, "smart": 3})

    await asyncio.gather(
        *(run(Diamond(), f"a{i}", f"b{i}", resources=manager, profiler=profiler) for i in range(30))
    )

    assert fast.peak_in_flight == 3
    lanes = profiler.to_dict()["metadata"]["call_lanes"]
    assert lanes["fast"] <= 3
    assert lanes["smart"] <= 3
    assert len([e for e in events(profiler, "X") if e["cat"] == "llm"]) == 90
