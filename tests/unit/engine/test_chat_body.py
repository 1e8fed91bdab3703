"""A chat completions body (a Batch API line's) maps onto LLMRequest and back, field for field."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from app.engine.chat_body import request_from_body
from app.llm.openai_body import chat_body

TOOL = {
    "type": "function",
    "function": {"name": "f", "description": "d", "parameters": {"type": "object"}},
}
BODY: dict[str, Any] = {
    "model": "gpt-4o",
    "messages": [
        {"role": "system", "content": "Be brief."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is {this}?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}},
            ],
        },
        {
            "role": "assistant",
            "tool_calls": [
                {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "c", "content": "42"},
    ],
    "temperature": 0.2,
    "top_p": 0.9,
    "frequency_penalty": 0.1,
    "presence_penalty": 0.2,
    "seed": 1,
    "logprobs": True,
    "top_logprobs": 2,
    "n": 2,
    "reasoning_effort": "low",
    "tool_choice": {"type": "function", "function": {"name": "f"}},
    "max_tokens": 30,
    "stop": ["END"],
    "tools": [TOOL],
    "response_format": {
        "type": "json_schema",
        "json_schema": {"name": "out", "schema": {"type": "object"}, "strict": True},
    },
}


def test_a_body_round_trips_through_the_request() -> None:
    request = request_from_body(BODY)
    assert request.messages[1]["content"][0]["text"] == "What is {this}?"  # literal, no template
    assert chat_body(request, "unused") == BODY


@pytest.mark.parametrize(
    ("change", "sent"),
    [
        ({"response_format": {"type": "json_object"}}, {"type": "json_object"}),
        ({"response_format": {"type": "text"}}, None),
    ],
)
def test_response_formats(change: dict[str, Any], sent: Any) -> None:
    body = chat_body(request_from_body({**BODY, **change}), "unused")
    assert body.get("response_format") == sent


def test_max_completion_tokens_and_a_single_stop() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    request = request_from_body({**body, "max_completion_tokens": 7, "stop": "X"})
    assert (request.max_tokens, request.stop) == (7, ("X",))


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"stream": True}, "stream"),
        ({"messages": []}, "messages"),
        ({"n": 0}, "n"),
        ({"logprobs": "yes"}, "logprobs"),
        ({"tool_choice": "sometimes"}, "tool_choice"),
        ({"response_format": {"type": "json_schema"}}, "response_format"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages"),
    ],
)
def test_bad_fields_are_named(change: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        request_from_body({**BODY, **change})
    assert any(error["loc"][0] == field for error in caught.value.errors())
