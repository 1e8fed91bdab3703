"""Inputs may be passed by keyword: ``run_sync(m, question=..., context=...)``."""

from __future__ import annotations

from typing import Any

import pytest

from app.engine import InferenceModule, InputError, LLMInference, run, run_sync, trace
from app.engine.testing import ScriptedLLM, scripted_manager


class Answer(InferenceModule):
    def __init__(self) -> None:
        super().__init__()
        self.llm = LLMInference("fast")

    def forward(self, question: str, context: str) -> Any:
        return self.llm(f"{context} / {question}")


def echo() -> Any:
    return scripted_manager({"fast": ScriptedLLM(lambda request: request.prompt)})


def test_run_sync_takes_inputs_by_keyword() -> None:
    out = run_sync(Answer(), question="why?", context="sky", resources=echo())
    assert out == "sky / why?"


async def test_positional_and_keyword_inputs_mix_like_a_call() -> None:
    assert await run(Answer(), "why?", context="sky", resources=echo()) == "sky / why?"


async def test_a_bound_module_is_awaited_with_keyword_inputs() -> None:
    module = Answer().bind(echo())
    assert await module(context="sky", question="why?") == "sky / why?"


async def test_a_graph_takes_keyword_inputs_too() -> None:
    graph = trace(Answer())
    assert await run(graph, question="why?", context="sky", resources=echo()) == {
        "output": "sky / why?"
    }


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (("why?",), {"question": "again?", "context": "sky"}, "'question' given twice"),
        ((), {"question": "why?"}, "missing input 'context'"),
        ((), {"question": "why?", "context": "sky", "contxt": "x"}, "unknown input 'contxt'"),
    ],
)
async def test_bad_keyword_inputs_name_the_input(
    args: tuple[Any, ...], kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(InputError, match=message):
        await run(Answer(), *args, **kwargs, resources=echo())
