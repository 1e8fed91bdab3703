"""Route each message by a classification: questions are answered, complaints escalated.

Run: .venv/bin/python examples/router.py
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from app.engine import (
    InferenceModule,
    LLMInference,
    ResourceConfig,
    close_shared_managers,
    match_branch,
    run_batch,
    trace,
)

HERE = Path(__file__).parent
CATEGORY = {
    "type": "object",
    "properties": {"category": {"type": "string", "enum": ["question", "complaint", "praise"]}},
    "required": ["category"],
}
MESSAGES = [
    "How do I reset my password?",
    "The app crashed twice today and I lost my work.",
    "Love the new dashboard!",
    "Can I export my data as CSV?",
    "Support never answered my ticket.",
]


class Router(InferenceModule):
    def __init__(self) -> None:
        super().__init__()
        self.classify = LLMInference(
            "fast", system_prompt="Classify the message.", response_format=CATEGORY
        )
        self.answer = LLMInference(
            "smart", system_prompt="Answer the customer's question helpfully."
        )
        self.escalate = LLMInference("smart", system_prompt="Write a short apology and next steps.")
        self.thank = LLMInference("fast", system_prompt="Thank the customer in one sentence.")

    def forward(self, message: str) -> object:
        category = self.classify(message)["category"]
        reply = match_branch(
            category,
            {"question": lambda: self.answer(message), "complaint": lambda: self.escalate(message)},
            default=lambda: self.thank(message),
        )
        return {"category": category, "reply": reply}


async def main() -> None:
    resources = ResourceConfig.from_yaml(HERE / "endpoints.yaml")
    router = Router()
    graph = trace(router)
    print("nodes:", ", ".join(f"{n.id}[{n.op}]" for n in graph.nodes))
    for result in await run_batch(router, MESSAGES, resources=resources):
        print(f"\n> {result.input}\n  {result.output['category']}: {result.output['reply'][:100]}")
    await close_shared_managers()


if __name__ == "__main__":
    asyncio.run(main())
