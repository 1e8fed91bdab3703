"""Chat messages, tools and tool choice of an ``llm`` node, in the chat completions shape.

Every text of a message (a string content, a ``text`` part, an image URL) is a template with
the same safe rules as a prompt; tool definitions and tool-call arguments are literal.

>>> m = Message.model_validate({"role": "user", "content": [{"type": "text", "text": "{q}"},
...     {"type": "image_url", "image_url": {"url": "{photo}"}}]})
>>> list(message_texts([m]))
[('messages[0].content[0].text', '{q}'), ('messages[0].content[1].image_url.url', '{photo}')]
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

FunctionName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TextPart(_Strict):
    type: Literal["text"]
    text: str


class ImageURL(_Strict):
    url: str = Field(min_length=1, description="https URL or data:image/...;base64,... URL")
    detail: Literal["auto", "low", "high"] | None = None


class ImagePart(_Strict):
    type: Literal["image_url"]
    image_url: ImageURL


Part = Annotated[TextPart | ImagePart, Field(discriminator="type")]


class FunctionCall(_Strict):
    name: FunctionName
    arguments: str = Field(max_length=1_000_000, description="a JSON object, as text")

    @field_validator("arguments")
    @classmethod
    def _json_object(cls, text: str) -> str:
        try:
            value = json.loads(text)
        except ValueError:
            raise ValueError("must be a JSON object, as text") from None
        if not isinstance(value, dict):
            raise ValueError("must be a JSON object, as text")
        return text


class ToolCall(_Strict):
    id: str = Field(min_length=1, max_length=256)
    type: Literal["function"] = "function"
    function: FunctionCall


class Message(_Strict):
    """One chat message; ``tool`` messages answer the assistant's ``tool_calls`` by id."""

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | Annotated[list[Part], Field(max_length=256)] | None = None
    name: str | None = Field(default=None, max_length=64)
    tool_calls: list[ToolCall] | None = Field(default=None, max_length=128)
    tool_call_id: str | None = Field(default=None, max_length=256)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.tool_calls is not None and self.role != "assistant":
            raise ValueError("only an assistant message has 'tool_calls'")
        if (self.role == "tool") != (self.tool_call_id is not None):
            raise ValueError("a tool message, and only a tool message, needs 'tool_call_id'")
        if self.content is None and not self.tool_calls:
            raise ValueError("a message needs 'content' (or, from the assistant, 'tool_calls')")
        parts = self.content if isinstance(self.content, list) else []
        if self.role != "user" and any(part.type != "text" for part in parts):
            raise ValueError("only user messages can hold images")
        return self


class FunctionDef(_Strict):
    name: FunctionName
    description: str | None = Field(default=None, max_length=16_384)
    parameters: dict[str, Any] | None = Field(default=None, description="JSON schema")
    strict: bool | None = None


class ToolDef(_Strict):
    type: Literal["function"]
    function: FunctionDef


class NamedFunction(_Strict):
    name: FunctionName


class NamedToolChoice(_Strict):
    type: Literal["function"]
    function: NamedFunction


ToolChoice = Literal["auto", "none", "required"] | NamedToolChoice


def message_texts(messages: Sequence[Message]) -> Iterator[tuple[str, str]]:
    """(field, template text) for every text of the messages, named as in error reports."""
    for field, holder, key in text_slots(message_data(messages)):
        yield field, holder[key]


def message_data(messages: Sequence[Message]) -> tuple[dict[str, Any], ...]:
    """The messages as request data (unset fields left out); texts still unrendered."""
    return tuple(m.model_dump(mode="json", exclude_none=True) for m in messages)


def text_slots(messages: Sequence[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any], str]]:
    """(field, holder, key) of every text in message data: ``holder[key]`` is the text."""
    for i, message in enumerate(messages):
        field = f"messages[{i}].content"
        content = message.get("content")
        if isinstance(content, str):
            yield field, message, "content"
            continue
        for j, part in enumerate(content or ()):
            if part["type"] == "text":
                yield f"{field}[{j}].text", part, "text"
            else:
                yield f"{field}[{j}].image_url.url", part["image_url"], "url"
