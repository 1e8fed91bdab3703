"""``llm`` nodes with chat messages, tools and sampling fields: what loads, what is refused
(naming the field), and that message texts follow the prompt template rules."""

from __future__ import annotations

from typing import Any

import pytest

from app.engine import GraphValidationError, ResourceConfig, graph_hash, load_graph, to_data
from app.engine.resources.providers import refused_fields

TOOL = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}


def llm(**fields: Any) -> dict[str, Any]:
    node = {"id": "n", "op": "llm", "alias": "fast"} | fields
    return {"name": "g", "inputs": {"x": {}}, "nodes": [node], "outputs": {"o": "n"}}


def issues_of(data: Any) -> list[tuple[str | None, str, str]]:
    with pytest.raises(GraphValidationError) as caught:
        load_graph(data)
    return [(i.node, i.field, i.message) for i in caught.value.issues]


CHAT = [
    {"role": "system", "content": "Be {x}."},
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "see {x}"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}},
        ],
    },
    {
        "role": "assistant",
        "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
        ],
    },
    {"role": "tool", "tool_call_id": "c1", "content": "done"},
]


def test_a_full_chat_node_loads_and_round_trips() -> None:
    data = llm(
        messages=CHAT,
        tools=[TOOL],
        tool_choice="required",
        top_p=0.5,
        frequency_penalty=1.0,
        presence_penalty=-1.0,
        logprobs=True,
        top_logprobs=3,
        n=2,
        reasoning_effort="low",
    )
    graph = load_graph(data)
    again = load_graph(to_data(graph))
    assert graph_hash(again) == graph_hash(graph)
    assert to_data(graph)["nodes"][0]["messages"][2]["tool_calls"][0]["id"] == "c1"


def test_a_plain_node_dumps_only_what_it_sets() -> None:
    node = to_data(load_graph(llm(prompt="{x}")))["nodes"][0]
    assert node == {"id": "n", "op": "llm", "alias": "fast", "prompt": "{x}"}


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({}, "prompt", "needs a 'prompt' or 'messages'"),
        ({"messages": []}, "messages", "at least 1"),
        ({"prompt": "{x}", "tool_choice": "auto"}, "tool_choice", "'tool_choice' needs 'tools'"),
        ({"messages": [{"role": "user", "content": "{ghost}"}]}, "messages[0].content", "ghost"),
        (
            {"messages": [{"role": "user", "content": [{"type": "text", "text": "{0}"}]}]},
            "messages[0].content[0].text",
            "",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image_url", "image_url": {"url": "{nope}"}}],
                    }
                ]
            },
            "messages[0].content[0].image_url.url",
            "nope",
        ),
        ({"messages": [{"role": "wizard", "content": "x"}]}, "messages.0.role", "'user'"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages.0", "tool_call_id"),
        ({"messages": [{"role": "user"}]}, "messages.0", "needs 'content'"),
        (
            {
                "messages": [
                    {
                        "role": "assistant",
                        "content": [{"type": "image_url", "image_url": {"url": "https://a/b"}}],
                    }
                ]
            },
            "messages.0",
            "only user messages can hold images",
        ),
        (
            {
                "messages": [
                    {
                        "role": "assistant",
                        "tool_calls": [
                            {
                                "id": "c",
                                "type": "function",
                                "function": {"name": "f", "arguments": "[1]"},
                            }
                        ],
                    }
                ]
            },
            "messages.0.tool_calls.0.function.arguments",
            "JSON object",
        ),
        (
            {"prompt": "{x}", "tools": [{"type": "function", "function": {"name": "a b"}}]},
            "tools.0",
            "",
        ),
        ({"prompt": "{x}", "tools": [TOOL], "tool_choice": "sometimes"}, "tool_choice", ""),
        ({"prompt": "{x}", "top_p": 1.5}, "top_p", ""),
        ({"prompt": "{x}", "frequency_penalty": "high"}, "frequency_penalty", ""),
        ({"prompt": "{x}", "presence_penalty": 3}, "presence_penalty", ""),
        ({"prompt": "{x}", "logprobs": "yes"}, "logprobs", ""),
        ({"prompt": "{x}", "top_logprobs": 21}, "top_logprobs", ""),
        ({"prompt": "{x}", "n": 0}, "n", ""),
        ({"prompt": "{x}", "reasoning_effort": "extreme"}, "reasoning_effort", ""),
    ],
)
def test_bad_fields_are_named(fields: dict[str, Any], field: str, message: str) -> None:
    found = issues_of(llm(**fields))
    assert any(f.startswith(field) and message in m for _, f, m in found), found


def test_fields_the_alias_provider_refuses_are_named() -> None:
    config = ResourceConfig.from_dict(
        {
            "endpoints": {
                "claude": {"provider": "anthropic", "model": "c"},
                "o3": {"provider": "openai", "model": "o3-mini"},
                "local": {"provider": "openai-compatible", "model": "m", "base_url": "http://h/v1"},
            }
        }
    )
    aliases = refused_fields(config)
    fields = {"n": 2, "logprobs": True, "top_p": 0.5, "reasoning_effort": "low"}
    for alias, refused in [
        ("claude", {"n", "logprobs", "reasoning_effort"}),
        ("o3", {"logprobs", "top_p"}),
    ]:
        with pytest.raises(GraphValidationError) as caught:
            load_graph(llm(alias=alias, prompt="{x}", **fields), aliases=aliases)
        assert {(i.node, i.field) for i in caught.value.issues} == {("n", f) for f in refused}
    load_graph(llm(alias="local", prompt="{x}", **fields), aliases=aliases)
    load_graph(llm(alias="claude", prompt="{x}", n=1), aliases=aliases)


def test_a_message_text_longer_than_256_characters_loads() -> None:
    text = "Context: " + "x" * 5_000 + " {x}"
    graph = load_graph(llm(messages=[{"role": "user", "content": text}]))
    assert graph.node("n").messages[0].content == text  # type: ignore[union-attr]
