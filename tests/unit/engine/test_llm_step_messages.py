"""An ``llm`` step's messages: each request renders its own copy, the step keeps its
templates, and no two requests share a message, a part or a tool call."""

from __future__ import annotations

from typing import Any

from app.engine.execution.step import LLMStep
from app.engine.graph.refs import parse_template

MESSAGES: tuple[dict[str, Any], ...] = (
    {"role": "system", "content": "{t0}"},
    {"role": "assistant", "tool_calls": [{"id": "c1", "function": {"name": "f"}}]},
    {"role": "user", "content": [{"type": "text", "text": "{t1}"},
                                 {"type": "image_url", "image_url": {"url": "{t2}"}}]},
)  # fmt: skip
TEXTS = {
    "messages[0].content": "{t0}",
    "messages[2].content[0].text": "{t1}",
    "messages[2].content[1].image_url.url": "{t2}",
}


def step() -> LLMStep:
    templates = {name: parse_template(text) for name, text in TEXTS.items()}
    return LLMStep("a", parse_template(""), parse_template(""), "text", None, None,
                   messages=MESSAGES, templates=templates)  # fmt: skip


def test_each_request_renders_its_own_copy_of_the_messages() -> None:
    llm = step()
    first = llm.request("m", {"t0": "Be brief.", "t1": "What is this?", "t2": "data:x"}).messages
    second = llm.request("m", {"t0": "Be long.", "t1": "And this?", "t2": "data:y"}).messages
    assert first[0] == {"role": "system", "content": "Be brief."}
    assert first[2]["content"] == [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:x"}},
    ]
    assert (second[0]["content"], second[2]["content"][1]["image_url"]["url"]) == (
        "Be long.", "data:y",
    )  # fmt: skip
    assert llm.messages == MESSAGES
    assert MESSAGES[2]["content"][0]["text"] == "{t1}"
    assert first[1]["tool_calls"] == MESSAGES[1]["tool_calls"]
    assert first[1]["tool_calls"][0] is not second[1]["tool_calls"][0]
    assert first[1]["tool_calls"][0] is not MESSAGES[1]["tool_calls"][0]
