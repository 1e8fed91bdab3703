"""A module is traced once and re-traced when anything in its tree changes."""

from __future__ import annotations

from typing import Any

from app.engine import InferenceModule, LLMInference, run
from app.engine.testing import ScriptedLLM, scripted_manager


class Inner(InferenceModule):
    def __init__(self) -> None:
        super().__init__()
        self.llm = LLMInference("fast")

    def forward(self, q: str) -> Any:
        return self.llm(f"Q: {q}")


class Outer(InferenceModule):
    def __init__(self) -> None:
        super().__init__()
        self.inner = Inner()
        self.forward_calls = 0

    def forward(self, q: str) -> Any:
        object.__setattr__(self, "forward_calls", self.forward_calls + 1)
        return self.inner(q)


def two_endpoints() -> tuple[ScriptedLLM, ScriptedLLM, Any]:
    fast, smart = ScriptedLLM(lambda r: "fast"), ScriptedLLM(lambda r: "smart")
    return fast, smart, scripted_manager({"fast": fast, "smart": smart})


async def test_replacing_a_nested_child_retraces() -> None:
    _, smart, manager = two_endpoints()
    module = Outer()
    assert await run(module, "x", resources=manager) == "fast"
    module.inner.llm = LLMInference("smart")
    assert await run(module, "x", resources=manager) == "smart"
    assert len(smart.calls) == 1


async def test_changing_alias_of_a_nested_llm_retraces() -> None:
    _, smart, manager = two_endpoints()
    module = Outer()
    assert await run(module, "x", resources=manager) == "fast"
    module.inner.llm.alias = "smart"
    assert await run(module, "x", resources=manager) == "smart"
    assert len(smart.calls) == 1


async def test_changing_a_nested_option_retraces() -> None:
    fast, _, manager = two_endpoints()
    module = Outer()
    await run(module, "x", resources=manager)
    module.inner.llm.max_tokens = 7
    await run(module, "x", resources=manager)
    assert [call.max_tokens for call in fast.calls] == [None, 7]


async def test_an_unchanged_module_is_traced_once() -> None:
    _, _, manager = two_endpoints()
    module, unrelated = Outer(), Outer()
    await run(module, "x", resources=manager)
    unrelated.inner.llm.alias = "smart"  # a change elsewhere does not touch this trace
    await run(module, "y", resources=manager)
    assert module.forward_calls == 1


async def test_a_module_called_from_a_plain_list_is_part_of_the_key() -> None:
    class Steps(InferenceModule):
        def __init__(self) -> None:
            super().__init__()
            self.steps = [LLMInference("fast")]  # a list: not a registered child

        def forward(self, q: str) -> Any:
            return self.steps[0](q)

    _, _, manager = two_endpoints()
    module = Steps()
    assert await run(module, "x", resources=manager) == "fast"
    module.steps[0].alias = "smart"
    assert await run(module, "x", resources=manager) == "smart"
