"""What OpenTelemetry tracing costs the engine: CPU per item with and without spans.

One batch of ``ITEMS`` items of a four-node graph (two model calls, a template, a third call)
runs in-process against an instant scripted provider, so the engine's own CPU is all there is
to measure: with no spans (the default), with the service's OpenTelemetry backend
(``app.services.observability.otel``) on an SDK provider whose processor exports nothing (the
export is the collector's cost, batched off the loop), and with that backend under a sampler
that keeps no trace (``OTEL_TRACES_SAMPLER=always_off``; a ratio sampler costs in between).
Best of ``REPEAT`` runs. A served job spends far more per item (HTTP, result rows), so the
ratio here is an upper bound of what tracing adds to a job.

    .venv/bin/python -m bench.tracing_bench
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, Sampler

from app.engine import ExecutionSettings, load_graph, run
from app.engine.testing import ScriptedLLM, scripted_manager
from app.services.observability.otel import OtelSpans

ITEMS = 2_000
REPEAT = 3
RESULTS = Path(__file__).resolve().parent / "results"
GRAPH = {
    "name": "traced",
    "inputs": {"a": {"type": "string"}, "b": {"type": "string"}},
    "nodes": [
        {"id": "left", "op": "llm", "alias": "fast", "prompt": "{a}"},
        {"id": "right", "op": "llm", "alias": "fast", "prompt": "{b}"},
        {"id": "both", "op": "template", "text": "{left} / {right}"},
        {"id": "judge", "op": "llm", "alias": "fast", "prompt": "{both}", "temperature": 0.2},
    ],
    "outputs": {"out": "judge"},
}


class Discard(SpanExporter):
    """Counts the spans it is handed and drops them."""

    def __init__(self) -> None:
        self.spans = 0

    def export(self, spans: Any) -> SpanExportResult:
        self.spans += len(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


async def batch(spans: OtelSpans | None) -> float:
    """CPU seconds of one batch of ``ITEMS`` items (each under an item span when traced, as
    the runner makes one)."""
    manager = scripted_manager({"fast": ScriptedLLM()}, max_concurrent=256)
    graph = load_graph(GRAPH)

    async def item(i: int) -> None:
        inputs = {"a": f"a{i}", "b": f"b{i}"}
        if spans is None:
            await run(graph, inputs)
            return
        with spans.tracer.start_as_current_span("item"):
            await run(graph, inputs)

    started = time.process_time()
    with ExecutionSettings(spans=spans, resources=manager):
        await asyncio.gather(*(item(i) for i in range(ITEMS)))
    return time.process_time() - started


def best(spans: OtelSpans | None) -> float:
    return min(asyncio.run(batch(spans)) for _ in range(REPEAT))


def backend(sampler: Sampler | None, exporter: Discard) -> OtelSpans:
    provider = TracerProvider(sampler=sampler) if sampler is not None else TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return OtelSpans(provider.get_tracer("bench"), {"fast": "simulated"})


def report() -> dict[str, Any]:
    exporter = Discard()
    plain = best(None)
    traced = best(backend(None, exporter))
    sampled_out = best(backend(ALWAYS_OFF, Discard()))
    figures = {
        "items": ITEMS,
        "spans_per_item": exporter.spans / (ITEMS * REPEAT),
        "cpu_s_untraced": plain,
        "cpu_s_traced": traced,
        "cpu_s_sampled_out": sampled_out,
        "ratio_traced": traced / plain,
        "ratio_sampled_out": sampled_out / plain,
        "extra_us_per_item": (traced - plain) / ITEMS * 1e6,
    }
    print(
        f"tracing: {ITEMS} items, {figures['spans_per_item']:.0f} spans each: "
        f"{plain:.2f} s CPU untraced, {traced:.2f} s traced "
        f"(x{figures['ratio_traced']:.2f}, +{figures['extra_us_per_item']:.0f} us per item), "
        f"{sampled_out:.2f} s sampled out (x{figures['ratio_sampled_out']:.2f})"
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "tracing_bench.json").write_text(json.dumps(figures, indent=2))
    return figures


if __name__ == "__main__":
    report()
    sys.exit(0)
