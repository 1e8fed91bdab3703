"""Prompt-cache reads in a provider's usage become the response's ``cached_tokens``."""

from __future__ import annotations

import json

from app.llm.anthropic import parse_message
from app.llm.openai import parse_chat_completion

CHOICE = {"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}


def _openai(usage: dict[str, object]) -> bytes:
    return json.dumps({"model": "m", "choices": [CHOICE], "usage": usage}).encode()


def test_openai_cached_tokens_are_prompt_tokens_details() -> None:
    usage = {"prompt_tokens": 40, "completion_tokens": 2,
             "prompt_tokens_details": {"cached_tokens": 32}}  # fmt: skip
    response = parse_chat_completion("t", _openai(usage))
    assert (response.input_tokens, response.cached_tokens) == (40, 32)


def test_openai_without_details_has_none_cached() -> None:
    response = parse_chat_completion("t", _openai({"prompt_tokens": 40, "completion_tokens": 2}))
    assert response.cached_tokens == 0
    odd = {"prompt_tokens": 4, "completion_tokens": 2, "prompt_tokens_details": None}
    assert parse_chat_completion("t", _openai(odd)).cached_tokens == 0


def test_anthropic_cache_reads_are_cached_and_count_as_input() -> None:
    usage = {"input_tokens": 8, "output_tokens": 2, "cache_read_input_tokens": 30,
             "cache_creation_input_tokens": 2}  # fmt: skip
    body = {"model": "c", "content": [{"type": "text", "text": "hi"}], "stop_reason": "end_turn",
            "usage": usage}  # fmt: skip
    response = parse_message("t", json.dumps(body).encode())
    assert (response.input_tokens, response.cached_tokens) == (40, 30)
