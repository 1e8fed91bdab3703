"""A Batch API line's chat body as a one-node ``llm`` graph: every message role, tools and
the sampling fields carry over, texts are inputs (never templates), and what the engine
cannot serve is refused with its field named."""

from __future__ import annotations

from typing import Any

import pytest

from app.engine.graph.model import LLMNode
from app.services.batches.chat import ChatCalls, Refused, chat_call

USER = [{"role": "user", "content": "Hi"}]
TOOL = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}
CHAT: list[dict[str, Any]] = [
    {"role": "system", "content": "Be {brief}."},
    {"role": "user", "content": "Earlier question"},
    {
        "role": "assistant",
        "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}
        ],
    },
    {"role": "tool", "tool_call_id": "c1", "content": "found"},
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "And this?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}},
        ],
    },
]


def test_every_text_becomes_an_input_and_braces_stay_literal() -> None:
    call = chat_call({"model": "m", "messages": CHAT})
    assert call.texts == {
        "t0": "Be {brief}.", "t1": "Earlier question", "t2": "found", "t3": "And this?",
        "t4": "data:image/png;base64,AA==",
    }  # fmt: skip
    messages = call.node["messages"]
    assert messages[0] == {"role": "system", "content": "{t0}"}
    assert messages[2]["tool_calls"][0]["function"]["name"] == "lookup"
    assert messages[4]["content"][1] == {"type": "image_url", "image_url": {"url": "{t4}"}}
    LLMNode.model_validate({"op": "llm", "id": "call", "alias": "a", **call.node})


def test_tools_and_sampling_fields_carry_over_to_the_node() -> None:
    call = chat_call({
        "model": "m", "messages": USER, "tools": [TOOL], "tool_choice": "required",
        "top_p": 0.5, "frequency_penalty": 1.0, "presence_penalty": -1.0, "logprobs": True,
        "top_logprobs": 2, "n": 3, "reasoning_effort": "low", "temperature": 0.2,
        "max_completion_tokens": 7, "stop": "END", "seed": 3, "stream": False, "user": "u1",
        "response_format": {"type": "json_object"},
    })  # fmt: skip
    node = call.node
    assert (node["tools"], node["tool_choice"], node["n"]) == ([TOOL], "required", 3)
    assert (node["top_p"], node["frequency_penalty"], node["presence_penalty"]) == (0.5, 1, -1)
    assert (node["logprobs"], node["top_logprobs"], node["reasoning_effort"]) == (True, 2, "low")
    assert (node["max_tokens"], node["stop"], node["seed"]) == (7, ["END"], 3)
    assert node["response_format"] == "json"
    assert not {"user", "stream"} & set(node)
    assert set(call.fields) >= {"top_p", "logprobs", "n", "tools"}


def test_lines_of_one_shape_share_it_and_n_of_one_is_not_a_field() -> None:
    one = chat_call({"model": "m", "messages": [{"role": "user", "content": "a"}], "n": 1})
    two = chat_call({"model": "m", "messages": [{"role": "user", "content": "b"}], "n": 1})
    other = chat_call({"model": "m", "messages": USER, "top_p": 0.1})
    assert one.shape == two.shape != other.shape
    assert "n" not in one.fields


def test_a_long_message_is_not_refused() -> None:
    text = "word " * 10_000
    assert chat_call({"model": "m", "messages": [{"role": "user", "content": text}]}).texts == {
        "t0": text
    }


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"top_q": 0.1}, "body.top_q: unsupported field"),
        ({"stream": True}, "body.stream"),
        ({"temperature": 3}, "body.temperature"),
        ({"n": 0}, "body.n"),
        ({"messages": []}, "body.messages"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "body.messages[0]"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "body.messages[0].role"),
        ({"model": ""}, "body.model"),
        ({"response_format": {"type": "xml"}}, "body.response_format"),
        ({"tool_choice": "sometimes"}, "body.tool_choice"),
    ],
)
def test_what_the_engine_cannot_serve_is_refused_naming_it(
    extra: dict[str, Any], named: str
) -> None:
    with pytest.raises(Refused, match=named.replace("[", r"\[").replace("]", r"\]")):
        chat_call({"model": "m", "messages": USER, **extra})


def _outcome(check: Any, body: dict[str, Any]) -> Any:
    try:
        return check(body)
    except Refused as exc:
        return f"refused: {exc}"


def test_bodies_checked_once_per_shape_end_as_each_checked_alone() -> None:
    def user(content: Any, **extra: Any) -> dict[str, Any]:
        return {"model": "m", "messages": [{"role": "user", "content": content}], **extra}

    bodies = [
        user("a"), user("b"), user(""), user(None), user(3), user(["x"]), user("c", user="u2"),
        user("d", top_p=0.5), user("e", top_p=5), user("f", stream=True), user("g", top_q=1),
        {"model": "m", "messages": CHAT}, {"model": "m", "messages": [*CHAT[:4], CHAT[1]]},
        {"model": "m", "messages": [{**CHAT[3], "content": "other"}, CHAT[1]]},
        {"model": "m", "messages": [CHAT[0], {**CHAT[3], "content": "found again"}]},
        {"model": "m", "messages": [{"role": "assistant", "content": "x"}, *CHAT[1:]]},
        {"model": "m", "messages": "hi"}, {"model": "m"},
    ]  # fmt: skip
    calls = ChatCalls(size=4)
    for body in [*bodies, *bodies]:
        assert _outcome(calls.call, body) == _outcome(chat_call, body), body


def test_a_kept_call_takes_each_lines_own_texts() -> None:
    calls = ChatCalls()
    first = calls.call({"model": "m", "messages": CHAT})
    second = calls.call({"model": "m", "messages": [{**CHAT[0], "content": "Be long."}, *CHAT[1:]]})
    assert second.node is first.node
    assert (first.texts["t0"], second.texts["t0"]) == ("Be {brief}.", "Be long.")
    assert second.texts["t4"] == first.texts["t4"]
