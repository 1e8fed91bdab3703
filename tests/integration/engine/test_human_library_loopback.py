"""``human()`` in ``forward()``: ``run()`` returns a pending state with the wait and its
rendered prompt, and ``resume(state, answers)`` goes on without calling the finished nodes
again (counted at the fake server)."""

from __future__ import annotations

from typing import Any

import pytest

from app.engine import InferenceModule, InputError, LLMInference, Pending, human, resume, run
from tests.support.engine import MakeManager
from tests.support.fake_llm import FakeLLM

APPROVE = {
    "type": "object",
    "required": ["approve"],
    "properties": {"approve": {"type": "boolean"}},
}


class Reviewed(InferenceModule):
    def __init__(self) -> None:
        super().__init__()
        self.draft = LLMInference("fast", system_prompt="Draft.")
        self.final = LLMInference("fast", system_prompt="Final.")

    def forward(self, doc: str) -> Any:
        draft = self.draft(doc)
        verdict = human(f"Approve {draft}?", schema=APPROVE)
        return self.final(f"verdict {verdict['approve']} for {doc}")


def prompts(fake_llm: FakeLLM) -> list[str]:
    return [e["prompt"] for e in fake_llm.log()]


async def test_run_stops_at_the_human_node_and_resume_goes_on(
    endpoints: MakeManager, fake_llm: FakeLLM
) -> None:
    manager = endpoints(fast={})
    state = await run(Reviewed(), "memo", resources=manager)
    assert isinstance(state, Pending)
    [wait] = state.waits
    assert wait.prompt.startswith("Approve ")
    assert wait.prompt.endswith("?")
    assert prompts(fake_llm) == ["memo"]

    with pytest.raises(InputError, match=r"answer\.approve"):
        await resume(state, {wait.node: {"approve": "yes"}})
    out = await resume(state, {wait.node: {"approve": True}})

    assert isinstance(out, str)
    assert prompts(fake_llm) == ["memo", "verdict true for memo"]  # draft not called again
