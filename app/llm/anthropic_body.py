"""Request bodies of Anthropic's Messages API, from the chat completions shape.

Pure functions. What changes on the way:

- ``system`` and ``developer`` messages join the top-level ``system`` prompt;
- an ``image_url`` part becomes an ``image`` block (``url`` source, or ``base64`` for a
  ``data:`` URL); an assistant's ``tool_calls`` become ``tool_use`` blocks, and ``tool``
  messages become ``tool_result`` blocks of one user turn;
- ``tools`` become ``{name, description, input_schema}``; ``tool_choice`` ``auto``/``none``/
  ``required``/a named function become ``auto``/``none``/``any``/``tool``;
- JSON output is native: a JSON format (``"json"`` or a schema) adds the tool
  :data:`JSON_TOOL` with the schema as its input schema and forces it, and the answer is the
  tool's input. With tools of the request's own, or a schema whose root is not an object,
  an instruction in the system prompt asks for JSON instead.

>>> body = messages_body(LLMRequest("m", "", "hi", response_format="json"), "d")
>>> body["tool_choice"], body["tools"][0]["name"]
({'type': 'tool', 'name': 'json_output'}, 'json_output')
"""

from __future__ import annotations

import json
from typing import Any

from app.engine.llm import LLMRequest, Message

DEFAULT_MAX_TOKENS = 1024
JSON_TOOL = "json_output"
JSON_TOOL_DESCRIPTION = "Give the answer as this tool's input, a JSON object."
JSON_INSTRUCTION = (
    "Answer with a single JSON object and nothing else: no prose, no Markdown code fences."
)
_TOOL_CHOICES = {"auto": {"type": "auto"}, "none": {"type": "none"}, "required": {"type": "any"}}


def messages_body(request: LLMRequest, model: str) -> dict[str, Any]:
    """The request body; ``max_tokens`` always set (the API requires it).

    >>> messages_body(LLMRequest(model="m", system="Be brief.", prompt="hi", stop=("X",)), "d")
    ... # doctest: +NORMALIZE_WHITESPACE
    {'model': 'm', 'max_tokens': 1024, 'messages': [{'role': 'user', 'content': 'hi'}],
     'system': 'Be brief.', 'stop_sequences': ['X']}
    """
    system, turns = split_conversation(request.conversation())
    max_tokens = request.max_tokens if request.max_tokens is not None else DEFAULT_MAX_TOKENS
    body: dict[str, Any] = {"model": request.model or model, "max_tokens": max_tokens}
    body["messages"] = turns
    json_tool = native_json_tool(request)
    if json_tool is None:
        system = system_prompt(system, request.response_format)
    if system:
        body["system"] = system
    for name in ("temperature", "top_p"):
        if getattr(request, name) is not None:
            body[name] = getattr(request, name)
    if request.stop:
        body["stop_sequences"] = list(request.stop)
    _add_tools(body, request, json_tool)
    return body


def _add_tools(body: dict[str, Any], request: LLMRequest, json_tool: dict[str, Any] | None) -> None:
    tools = [anthropic_tool(tool) for tool in request.tools]
    if json_tool is not None:
        tools.append(json_tool)
        body["tool_choice"] = {"type": "tool", "name": JSON_TOOL}
    elif request.tool_choice is not None:
        body["tool_choice"] = anthropic_tool_choice(request.tool_choice)
    if tools:
        body["tools"] = tools


def split_conversation(messages: list[Message]) -> tuple[str, list[dict[str, Any]]]:
    """(system prompt, turns): system and developer texts joined, the rest converted.

    >>> split_conversation([{"role": "system", "content": "S"},
    ...     {"role": "tool", "tool_call_id": "t1", "content": "42"}])
    ('S', [{'role': 'user', 'content': [{'type': 'tool_result', 'tool_use_id': 't1', \
'content': '42'}]}])
    """
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for message in messages:
        role = message["role"]
        if role in ("system", "developer"):
            system.append(_text_of(message.get("content")))
        elif role == "tool":
            _add_tool_result(turns, message)
        else:
            turns.append({"role": role, "content": _content(message)})
    return "\n\n".join(system), turns


def _add_tool_result(turns: list[dict[str, Any]], message: Message) -> None:
    block = {
        "type": "tool_result",
        "tool_use_id": message["tool_call_id"],
        "content": _text_of(message.get("content")),
    }
    last = turns[-1] if turns else None
    if last is not None and last["role"] == "user" and _all_tool_results(last["content"]):
        last["content"].append(block)  # results of one assistant turn go in one user turn
    else:
        turns.append({"role": "user", "content": [block]})


def _all_tool_results(content: Any) -> bool:
    return isinstance(content, list) and all(b.get("type") == "tool_result" for b in content)


def _content(message: Message) -> str | list[dict[str, Any]]:
    content = message.get("content")
    calls = message.get("tool_calls") or []
    if isinstance(content, str) and not calls:
        return content
    blocks = [anthropic_block(part) for part in _parts(content)]
    blocks += [tool_use_block(call) for call in calls]
    return blocks


def _parts(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    return list(content or ())


def anthropic_block(part: dict[str, Any]) -> dict[str, Any]:
    """A content block for a chat completions content part (text or image).

    >>> anthropic_block({"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}})
    {'type': 'image', 'source': {'type': 'base64', 'media_type': 'image/png', 'data': 'AA=='}}
    """
    if part["type"] == "text":
        return {"type": "text", "text": part["text"]}
    url: str = part["image_url"]["url"]
    if url.startswith("data:") and ";base64," in url:
        media_type, data = url[len("data:") :].split(";base64,", 1)
        source = {"type": "base64", "media_type": media_type, "data": data}
        return {"type": "image", "source": source}
    return {"type": "image", "source": {"type": "url", "url": url}}


def tool_use_block(call: dict[str, Any]) -> dict[str, Any]:
    """A ``tool_use`` block for a chat completions tool call (arguments are JSON text)."""
    function = call["function"]
    arguments = json.loads(function.get("arguments") or "{}")
    return {"type": "tool_use", "id": call["id"], "name": function["name"], "input": arguments}


def anthropic_tool(tool: dict[str, Any]) -> dict[str, Any]:
    """``{name, description, input_schema}`` for a chat completions function tool."""
    function = tool["function"]
    converted = {"name": function["name"]}
    if function.get("description"):
        converted["description"] = function["description"]
    converted["input_schema"] = function.get("parameters") or {"type": "object"}
    return converted


def anthropic_tool_choice(choice: str | dict[str, Any]) -> dict[str, Any]:
    """``auto``/``none``/``required`` or a named function, in Anthropic's vocabulary.

    >>> anthropic_tool_choice({"type": "function", "function": {"name": "f"}})
    {'type': 'tool', 'name': 'f'}
    """
    if isinstance(choice, str):
        return dict(_TOOL_CHOICES[choice])
    return {"type": "tool", "name": choice["function"]["name"]}


def native_json_tool(request: LLMRequest) -> dict[str, Any] | None:
    """The forced tool that carries a JSON answer, or None (no JSON asked, or not possible)."""
    if request.tools:
        return None
    schema = json_schema(request.response_format)
    if schema is None or schema.get("type", "object") != "object":
        return None
    return {"name": JSON_TOOL, "description": JSON_TOOL_DESCRIPTION, "input_schema": schema}


def json_schema(fmt: str | dict[str, Any]) -> dict[str, Any] | None:
    """The JSON schema a format asks for (``{"type": "object"}`` for plain JSON), or None.

    >>> json_schema({"type": "json_schema", "json_schema": {"name": "x", "schema": {"a": 1}}})
    {'a': 1}
    """
    if isinstance(fmt, str):
        return {"type": "object"} if fmt == "json" else None
    if fmt.get("type") == "json_object":
        return {"type": "object"}
    if fmt.get("type") == "json_schema":
        fmt = fmt.get("json_schema") or {}
    schema = fmt.get("schema", fmt) if ("schema" in fmt or "name" in fmt) else fmt
    return schema if isinstance(schema, dict) else None


def system_prompt(system: str, response_format: str | dict[str, Any]) -> str:
    """The system prompt, with the JSON instruction appended when JSON is asked for.

    >>> system_prompt("", "json") == JSON_INSTRUCTION
    True
    """
    schema = json_schema(response_format)
    if schema is None:
        return system
    instruction = JSON_INSTRUCTION
    if isinstance(response_format, dict):
        instruction += " It must conform to this JSON schema: " + json.dumps(schema)
    return f"{system}\n\n{instruction}" if system else instruction


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content or () if part.get("type") == "text")
