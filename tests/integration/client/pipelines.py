"""Small Python pipelines that ``inf-engine graphs push module:attr`` traces in the CLI tests:
a class, an instance and a factory of the same pipeline, and a class that needs arguments."""

from __future__ import annotations

from typing import Any

from app.engine import InferenceModule, LLMInference


class Summarize(InferenceModule):
    def __init__(self) -> None:
        super().__init__()
        self.llm = LLMInference("fast", system_prompt="Summarize in one line.")

    def forward(self, text: str) -> Any:
        return self.llm(f"Summarize: {text}")


summarize = Summarize()


def make_summarize() -> Summarize:
    return Summarize()


class NeedsAlias(InferenceModule):
    def __init__(self, alias: str) -> None:
        super().__init__()
        self.llm = LLMInference(alias)

    def forward(self, text: str) -> Any:
        return self.llm(text)
