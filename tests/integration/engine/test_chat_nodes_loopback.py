"""``llm`` nodes with chat messages, tools and sampling fields, run over real HTTP.

The rendered messages reach the server as sent; with tools the node's output is the
assistant message (``content`` and ``tool_calls``), with ``n`` > 1 the list of choices; a
field the alias's provider does not accept fails the node at once, naming the field.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from app.engine import ExecutionError, ResourceConfig, ResourceManager, run
from app.engine.graph.model import Graph
from tests.support.engine import MakeManager
from tests.support.fake_llm import FakeLLM

TOOL = {
    "type": "function",
    "function": {
        "name": "lookup",
        "parameters": {"type": "object", "properties": {"term": {"type": "string"}}},
    },
}


def chat_graph(**llm: Any) -> Graph:
    node = {
        "id": "answer",
        "op": "llm",
        "alias": "fast",
        "system": "You are {role}.",
        "messages": [
            {"role": "user", "content": "Earlier: {question}"},
            {"role": "assistant", "content": "Noted."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Look at {question}"},
                    {"type": "image_url", "image_url": {"url": "{photo}"}},
                ],
            },
        ],
        **llm,
    }
    return Graph.model_validate(
        {
            "name": "chat",
            "inputs": {"role": {}, "question": {}, "photo": {}},
            "nodes": [node],
            "outputs": {"out": "answer"},
        }
    )


INPUTS = {"role": "a tester", "question": "owls", "photo": "https://img.example/owl.png"}


async def test_messages_are_rendered_and_sent(endpoints: MakeManager, fake_llm: FakeLLM) -> None:
    fake_llm.configure(capture=True)
    graph = chat_graph(top_p=0.5, seed=3)
    out = await run(graph, INPUTS, resources=endpoints(fast={}))
    assert out["out"].startswith("reply[")
    [entry] = fake_llm.log()
    assert entry["body"]["messages"] == [
        {"role": "system", "content": "You are a tester."},
        {"role": "user", "content": "Earlier: owls"},
        {"role": "assistant", "content": "Noted."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Look at owls"},
                {"type": "image_url", "image_url": {"url": "https://img.example/owl.png"}},
            ],
        },
    ]
    assert (entry["body"]["top_p"], entry["body"]["seed"]) == (0.5, 3)


async def test_tools_make_the_output_the_assistant_message(endpoints: MakeManager) -> None:
    choice = {"type": "function", "function": {"name": "lookup"}}
    graph = chat_graph(tools=[TOOL], tool_choice=choice)
    out = (await run(graph, INPUTS, resources=endpoints(fast={})))["out"]
    assert out["content"] == ""
    [call] = out["tool_calls"]
    assert call["function"]["name"] == "lookup"
    assert "term" in json.loads(call["function"]["arguments"])


async def test_n_choices_are_a_list(endpoints: MakeManager) -> None:
    out = await run(chat_graph(n=3), INPUTS, resources=endpoints(fast={}))
    assert len(out["out"]) == 3
    assert all(text.startswith("reply[") for text in out["out"])


async def test_refused_field_fails_the_node_without_a_call(
    fake_llm: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
    config = ResourceConfig.from_dict(
        {
            "endpoints": {
                "fast": {"provider": "anthropic", "model": "c", "base_url": fake_llm.root_url}
            }
        }
    )
    async with ResourceManager(config) as manager:
        with pytest.raises(ExecutionError, match="'logprobs'"):
            await run(chat_graph(logprobs=True), INPUTS, resources=manager)
        assert manager.endpoint("fast").metrics.snapshot()["retries"] == {}
    assert fake_llm.log() == []
