"""A batch of 1,000 items with a live progress bar, results streamed as they finish.

Run: .venv/bin/python examples/batch_progress.py
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from app.engine import (
    InferenceModule,
    LLMInference,
    ResourceConfig,
    close_shared_managers,
    parse_json,
    stream,
)

HERE = Path(__file__).parent
ITEMS = 1_000


class Summarize(InferenceModule):
    def __init__(self) -> None:
        super().__init__()
        self.summary = LLMInference("fast", system_prompt="Summarize in one sentence.")
        self.score = LLMInference(
            "fast", system_prompt='Rate it: {"score": 0-10}', response_format="json"
        )

    def forward(self, text: str) -> object:
        summary = self.summary(text)
        return {"summary": summary, "score": parse_json(self.score(summary))}


def documents() -> object:
    for i in range(ITEMS):  # a generator: items are read only as capacity frees up
        yield f"Document {i}: quarterly report number {i} with {i % 7} open issues."


async def main() -> None:
    resources = ResourceConfig.from_yaml(HERE / "endpoints.yaml")
    columns = [
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    ]
    failures = 0
    with Progress(*columns) as progress:
        task = progress.add_task("summarizing", total=ITEMS)
        async for result in stream(Summarize(), documents(), resources=resources, ordered=False):
            failures += result.error is not None
            progress.advance(task)
    print(f"done: {ITEMS - failures} succeeded, {failures} failed")
    await close_shared_managers()


if __name__ == "__main__":
    asyncio.run(main())
