"""A batch's lines: the input line checked at create, and the output or error line of each.

Input: ``{custom_id, method, url, body}``. Output and error lines: ``{id, custom_id,
response: {status_code, request_id, body} | null, error: {code, message} | null}``; a line
the model answered has a chat-completion ``body``; a line refused or failed has the error's
``body`` (an error line), and a line the batch stopped (expired, cancelled) has ``error``.

>>> check_line(b'{"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": {}}',
...     "/v1/chat/completions")
({'custom_id': 'a', 'body': {}}, [])
>>> check_line(b'{"method": "GET"}', "/v1/chat/completions")[1][0]
('custom_id', 'custom_id is required (a non-empty string)')
"""

from __future__ import annotations

import json
import time
from typing import Any

import orjson

from app.engine.records import LLMUsage

MAX_CUSTOM_ID = 512
EXPIRED = "batch_expired"  # the error code of a line the batch's deadline stopped
FINISH_REASONS = {"stop", "length", "tool_calls", "content_filter", "function_call"}
FINISH_ALIASES = {"max_tokens": "length", "end_turn": "stop", "stop_sequence": "stop"}
CACHED_TOKENS = ("response", "body", "usage", "prompt_tokens_details", "cached_tokens")
ERROR_CODE = ("error", "code")  # where a stopped line says why (``batch_expired``)


def check_line(raw: bytes, endpoint: str) -> tuple[dict[str, Any] | None, list[tuple[str, str]]]:
    """The line's ``{custom_id, body}`` and its problems as ``(field, message)``."""
    try:
        line = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None, [("(line)", "not valid JSON")]
    if not isinstance(line, dict):
        return None, [("(line)", "not a JSON object")]
    problems: list[tuple[str, str]] = []
    custom_id = line.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id or len(custom_id) > MAX_CUSTOM_ID:
        problems.append(("custom_id", "custom_id is required (a non-empty string)"))
    if line.get("method") != "POST":
        problems.append(("method", f"method must be 'POST' (got {line.get('method')!r})"))
    if line.get("url") != endpoint:
        problems.append(("url", f"url must be the batch's endpoint {endpoint!r}"))
    if not isinstance(line.get("body"), dict):
        problems.append(("body", "body must be a JSON object"))
    return {"custom_id": custom_id, "body": line.get("body")}, problems


def answered(
    names: tuple[str, str, str], output: Any, usage: LLMUsage | None, *, many: bool, message: bool
) -> dict[str, Any]:
    """The output line of a line the model answered, ``body`` a chat completion.

    ``output`` is the node's: one answer, or the list of them when ``many`` (``n`` > 1); an
    answer is the assistant ``message`` (``content`` and ``tool_calls``) when tools were
    given, else its text (JSON already decoded, for a JSON response format).
    """
    line_id, custom_id, request_id = names
    tokens_in = usage.input_tokens if usage else 0
    tokens_out = usage.output_tokens if usage else 0
    reason = finish_reason(usage.finish_reason if usage else None)
    answers = output if many else [output]
    body = {
        "id": f"chatcmpl-{request_id.removeprefix('batch_req_')}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": usage.model if usage else "",
        "choices": [_choice(at, one, message, reason) for at, one in enumerate(answers)],
        "usage": {
            "prompt_tokens": tokens_in,
            "completion_tokens": tokens_out,
            "total_tokens": tokens_in + tokens_out,
            "prompt_tokens_details": {"cached_tokens": usage.cached_tokens if usage else 0},
        },
    }
    return _line(line_id, custom_id, {"status_code": 200, "request_id": request_id, "body": body})


def _choice(index: int, answer: Any, message: bool, reason: str) -> dict[str, Any]:
    """One choice: the answer as an assistant message (``tool_calls`` only when made)."""
    said = {"role": "assistant", "content": _text(answer["content"] if message else answer),
            "refusal": None}  # fmt: skip
    calls = answer.get("tool_calls") if message else None
    if calls:
        said["tool_calls"], reason = calls, "tool_calls"
    return {"index": index, "message": said, "finish_reason": reason, "logprobs": None}


def _text(answer: Any) -> str | None:
    if answer is None or isinstance(answer, str):
        return answer
    return orjson.dumps(answer).decode()  # a JSON response format's answer, decoded


def refused(
    line_id: str, custom_id: str, request_id: str, status: int, code: str, message: str
) -> dict[str, Any]:
    """The error line of a request refused or failed: an OpenAI error ``body``."""
    kind = "invalid_request_error" if status < 500 else "server_error"
    error = {"message": message, "type": kind, "param": None, "code": code}
    response = {"status_code": status, "request_id": request_id, "body": {"error": error}}
    return _line(line_id, custom_id, response)


def stopped(line_id: str, custom_id: str, code: str, message: str) -> dict[str, Any]:
    """The error line of a line the batch stopped before it ended (``batch_expired``)."""
    return {**_line(line_id, custom_id, None), "error": {"code": code, "message": message}}


def _line(line_id: str, custom_id: str, response: dict[str, Any] | None) -> dict[str, Any]:
    return {"id": line_id, "custom_id": custom_id, "response": response, "error": None}


def finish_reason(reason: str | None) -> str:
    """A provider's finish reason as a chat completion's (``stop`` when unknown).

    >>> finish_reason("max_tokens"), finish_reason(None)
    ('length', 'stop')
    """
    if reason in FINISH_REASONS:
        return reason
    return FINISH_ALIASES.get(reason or "", "stop")


def cached_tokens(line: dict[str, Any]) -> int:
    """The prompt-cache tokens an output line's answer reports (0 for other lines), at
    :data:`CACHED_TOKENS`.

    >>> cached_tokens({"response": {"body": {"usage": {"prompt_tokens_details":
    ...     {"cached_tokens": 7}}}}}), cached_tokens({"response": None})
    (7, 0)
    """
    body = (line.get("response") or {}).get("body") or {}
    details = (body.get("usage") or {}).get("prompt_tokens_details") or {}
    value = details.get("cached_tokens", 0)
    return value if isinstance(value, int) else 0


def encoded(line: dict[str, Any]) -> bytes:
    """One line of an output or error file (compact JSON, UTF-8 unescaped).

    >>> encoded({"a": "x", "b": [1, None]}).rstrip()
    b'{"a":"x","b":[1,null]}'
    """
    return orjson.dumps(line) + b"\n"
