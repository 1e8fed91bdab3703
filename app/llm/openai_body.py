"""Request bodies of the chat completions API (OpenAI, Azure OpenAI, compatible servers).

Pure functions: an :class:`~app.engine.llm.LLMRequest` in, a JSON-ready dict out. Messages,
tools and ``tool_choice`` are already in this API's shape and pass through unchanged.

>>> chat_body(LLMRequest(model="m", system="", prompt="hi", seed=1), "default")
{'model': 'm', 'messages': [{'role': 'user', 'content': 'hi'}], 'seed': 1}
>>> shape = BodyShape(max_tokens_field="max_completion_tokens", drop=frozenset({"temperature"}))
>>> chat_body(LLMRequest("o3", "", "hi", temperature=0.0, max_tokens=9), "o3", shape)
{'model': 'o3', 'messages': [{'role': 'user', 'content': 'hi'}], 'max_completion_tokens': 9}
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.engine.llm import LLMRequest

PASSED_THROUGH = (
    "temperature",
    "top_p",
    "frequency_penalty",
    "presence_penalty",
    "seed",
    "logprobs",
    "top_logprobs",
    "n",
    "reasoning_effort",
    "tool_choice",
)


@dataclass(frozen=True, slots=True)
class BodyShape:
    """How one endpoint spells a body: the max-tokens key, fields left out, model or not.

    Azure names the deployment in the URL, so its bodies carry no ``model``.
    """

    max_tokens_field: str = "max_tokens"
    drop: frozenset[str] = frozenset()
    send_model: bool = True


DEFAULT_SHAPE = BodyShape()


def chat_body(request: LLMRequest, model: str, shape: BodyShape = DEFAULT_SHAPE) -> dict[str, Any]:
    """The request body: model, messages, and only the options that are set."""
    body: dict[str, Any] = {"model": request.model or model} if shape.send_model else {}
    body["messages"] = request.conversation()
    for name in PASSED_THROUGH:
        value = getattr(request, name)
        if value is not None and name not in shape.drop:
            body[name] = value
    if request.max_tokens is not None:
        body[shape.max_tokens_field] = request.max_tokens
    if request.stop and "stop" not in shape.drop:
        body["stop"] = list(request.stop)
    if request.tools:
        body["tools"] = list(request.tools)
    response_format = openai_response_format(request.response_format)
    if response_format is not None:
        body["response_format"] = response_format
    return body


def openai_response_format(fmt: str | dict[str, Any]) -> dict[str, Any] | None:
    """The ``response_format`` field for a request's format; None for plain text.

    >>> openai_response_format("json")
    {'type': 'json_object'}
    >>> openai_response_format({"type": "object"})["json_schema"]["name"]
    'output'
    """
    if isinstance(fmt, str):
        return {"type": "json_object"} if fmt == "json" else None
    if fmt.get("type") in ("json_object", "json_schema"):
        return fmt  # already an OpenAI response_format
    if "schema" in fmt or "name" in fmt:
        return {"type": "json_schema", "json_schema": fmt}
    # strict mode would reject every schema that leaves a property optional
    schema = {"name": "output", "schema": fmt, "strict": False}
    return {"type": "json_schema", "json_schema": schema}
