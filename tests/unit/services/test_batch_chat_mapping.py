"""A Batch API line's chat body as the engine's LLM request: what maps, and what is refused
with its field named."""

from __future__ import annotations

from typing import Any

import pytest

from app.services.batches.chat import Refused, chat_call

USER = [{"role": "user", "content": "Hi"}]


def test_system_developer_and_user_messages_join_into_system_and_prompt() -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "developer", "content": [{"type": "text", "text": "No emoji."}]},
        {"role": "user", "content": "One"},
        {
            "role": "user",
            "content": [{"type": "text", "text": "T"}, {"type": "text", "text": "wo"}],
        },
    ]
    call = chat_call({"model": "m", "messages": messages})
    assert (call.system, call.prompt) == ("Be brief.\n\nNo emoji.", "One\n\nTwo")


def test_sampling_fields_pass_through() -> None:
    call = chat_call({
        "model": "m", "messages": USER, "temperature": 0.5, "max_completion_tokens": 7,
        "stop": "END", "seed": 3, "n": 1, "stream": False, "user": "u1",
        "response_format": {"type": "json_object"},
    })  # fmt: skip
    assert (call.temperature, call.max_tokens, call.stop, call.seed) == (0.5, 7, ("END",), 3)
    assert call.response_format == "json"
    schema = {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}
    assert (
        chat_call({"model": "m", "messages": USER, "response_format": schema}).response_format
        == schema
    )


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"tools": []}, "tools"),
        ({"top_p": 0.1, "logprobs": True}, "logprobs, top_p"),
        ({"n": 2}, "body.n"),
        ({"stream": True}, "body.stream"),
        ({"temperature": 3}, "body.temperature"),
        ({"max_tokens": 0}, "body.max_tokens"),
        ({"messages": [{"role": "assistant", "content": "x"}, *USER]}, "messages[0].role"),
        ({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}, "content[0]"),
        ({"messages": [{"role": "system", "content": "x"}]}, "no user message"),
        ({"model": ""}, "body.model"),
        ({"response_format": {"type": "xml"}}, "response_format"),
    ],
)
def test_what_the_engine_cannot_serve_is_refused_naming_it(
    extra: dict[str, Any], named: str
) -> None:
    with pytest.raises(Refused, match=named.replace("[", r"\[").replace("]", r"\]")):
        chat_call({"model": "m", "messages": USER, **extra})
