"""Extract facts from two documents concurrently, then compare them.

Run: make example   (or: .venv/bin/python examples/extract_and_compare.py)
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from app.engine import (
    InferenceModule,
    LLMInference,
    Parameter,
    ResourceConfig,
    TraceProfiler,
    close_shared_managers,
    run,
    shared_manager,
    to_dot,
    trace,
)

HERE = Path(__file__).parent
DOC1 = "Electric vehicles store energy in batteries. They charge from the grid. Range is improving."
DOC2 = (
    "Hydrogen vehicles store energy as compressed gas. They refuel in minutes. Stations are rare."
)


class ExtractAndCompare(InferenceModule):
    def __init__(self) -> None:
        super().__init__()
        self.extract = LLMInference(
            "fast", system_prompt="Extract the main facts as a bulleted list."
        )
        self.style = Parameter(
            "Highlight key similarities and differences.",
            description="How the comparison is written",
        )
        self.compare = LLMInference("smart", system_prompt=self.style, max_tokens=400)

    def forward(self, doc1: str, doc2: str) -> object:
        facts1, facts2 = self.extract(doc1), self.extract(doc2)
        return self.compare(f"Compare:\n{facts1}\n\nvs:\n{facts2}")


async def main() -> None:
    resources = ResourceConfig.from_yaml(HERE / "endpoints.yaml")
    pipeline = ExtractAndCompare()
    graph = trace(pipeline)
    print(f"graph {graph.name}: {len(graph.nodes)} nodes ({', '.join(graph.node_ids)})")
    with TraceProfiler(HERE / "traces" / "extract_and_compare.json") as profiler:
        comparison = await run(pipeline, DOC1, DOC2, resources=resources)
    print("\n" + comparison + "\n")
    for alias, state in shared_manager(resources).snapshot().items():
        metrics = state["metrics"]
        print(f"{alias}: {metrics['requests']} calls, p50 {metrics['latency_s']['p50']:.3f}s")
    print(f"profile: {profiler.path} (open in https://ui.perfetto.dev)")
    (HERE / "traces" / "extract_and_compare.dot").write_text(to_dot(graph))
    await close_shared_managers()


if __name__ == "__main__":
    asyncio.run(main())
