"""A chat completions request body (a Batch API line's ``body``) as an :class:`LLMRequest`.

The body is validated with the same message, tool and range rules as an ``llm`` node; its
texts are literal (no templates). Unknown fields are refused, by name.

>>> request = request_from_body({"model": "gpt-4o", "max_tokens": 5,
...     "messages": [{"role": "user", "content": "hi"}]})
>>> request.messages, request.max_tokens, request.prompt
(({'role': 'user', 'content': 'hi'},), 5, '')
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator

from app.engine.graph.messages import Message, ToolChoice, ToolDef, message_data
from app.engine.llm import LLMRequest


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class JsonSchemaSpec(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    description: str | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None


class ResponseFormat(_Strict):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaSpec | None = None

    @model_validator(mode="after")
    def _schema_given(self) -> Self:
        if (self.type == "json_schema") != (self.json_schema is not None):
            raise ValueError("'json_schema' goes with, and only with, type 'json_schema'")
        return self


class ChatBody(_Strict):
    """The chat completions fields the engine sends on (see docs/graph-format.md)."""

    model: str = Field(min_length=1, max_length=256)
    messages: list[Message] = Field(min_length=1, max_length=1000)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    max_tokens: int | None = Field(default=None, gt=0, le=1_000_000)
    max_completion_tokens: int | None = Field(default=None, gt=0, le=1_000_000)
    stop: str | list[str] | None = Field(default=None)
    seed: int | None = None
    response_format: ResponseFormat | None = None
    tools: list[ToolDef] | None = Field(default=None, min_length=1, max_length=128)
    tool_choice: ToolChoice | None = None
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    logprobs: StrictBool | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    n: int | None = Field(default=None, ge=1, le=128)
    reasoning_effort: Literal["minimal", "low", "medium", "high"] | None = None


def request_from_body(body: Mapping[str, Any]) -> LLMRequest:
    """The request a body asks for; ``pydantic.ValidationError`` names each bad field."""
    parsed = ChatBody.model_validate(body)
    fields = node_fields(parsed)
    stop, tools = fields.pop("stop", None), fields.pop("tools", ())
    return LLMRequest(
        model=parsed.model,
        system="",
        prompt="",
        stop=tuple(stop) if stop else None,
        messages=message_data(parsed.messages),
        tools=tuple(tools),
        **fields,
    )


def node_fields(parsed: ChatBody) -> dict[str, Any]:
    """The body's options as an ``llm`` node's fields (JSON data; unset ones left out).

    >>> node_fields(ChatBody.model_validate({"model": "m", "max_completion_tokens": 9,
    ...     "stop": "END", "messages": [{"role": "user", "content": "hi"}]}))
    {'max_tokens': 9, 'stop': ['END'], 'response_format': 'text'}
    """
    fields = {
        "temperature": parsed.temperature,
        "max_tokens": parsed.max_completion_tokens or parsed.max_tokens,
        "stop": _stops(parsed.stop),
        "seed": parsed.seed,
        "response_format": _format(parsed.response_format),
        "tools": [t.model_dump(mode="json", exclude_none=True) for t in parsed.tools or ()],
        "tool_choice": _dumped(parsed.tool_choice),
        **{name: getattr(parsed, name) for name in PASSED},
    }
    return {name: value for name, value in fields.items() if value not in (None, [])}


PASSED = (
    "top_p", "frequency_penalty", "presence_penalty", "logprobs", "top_logprobs", "n",
    "reasoning_effort",
)  # fmt: skip
"""Sampling fields that keep their name and value from body to node."""


def _stops(stop: str | list[str] | None) -> list[str] | None:
    if stop is None or stop == []:
        return None
    return [stop] if isinstance(stop, str) else list(stop)


def _format(fmt: ResponseFormat | None) -> str | dict[str, Any]:
    if fmt is None or fmt.type == "text":
        return "text"
    if fmt.type == "json_object":
        return "json"
    return fmt.model_dump(mode="json", by_alias=True, exclude_none=True)


def _dumped(choice: str | BaseModel | None) -> str | dict[str, Any] | None:
    return choice.model_dump(mode="json") if isinstance(choice, BaseModel) else choice
