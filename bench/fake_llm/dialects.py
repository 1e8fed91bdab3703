"""Wire formats: OpenAI chat completions and Anthropic messages (requests, answers, errors)."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from typing import Any

from .replies import ChatRequest, Completion, estimate_tokens

__all__ = ["ANTHROPIC", "OPENAI", "BadRequest", "Dialect"]


class BadRequest(ValueError):
    """The request body is not a valid chat request; answered with 400."""


class Dialect(ABC):
    """One provider's request parsing and response shapes."""

    overload_status: int
    server_error_type: str
    error_types: dict[int, str]

    @abstractmethod
    def parse(self, body: Any) -> ChatRequest:
        """Extract a ChatRequest from a decoded JSON body or raise BadRequest."""

    @abstractmethod
    def success(self, req: ChatRequest, comp: Completion, ident: int, created: int) -> Any:
        """The 200 answer body."""

    @abstractmethod
    def error(self, status: int, message: str) -> Any:
        """An error answer body for `status`."""

    @abstractmethod
    def rate_limited(self) -> Any:
        """The answer body when the server-side request cap is exceeded."""

    @abstractmethod
    def malformed(self, req: ChatRequest, ident: int, invalid_json: bool) -> bytes:
        """A 200 body a client cannot use: invalid JSON, or JSON missing the reply."""

    @abstractmethod
    def cached(self, body: Any, tokens: int) -> None:
        """Report ``tokens`` of the prompt as read from a prompt cache in a 200 ``body``."""

    def error_type(self, status: int) -> str:
        """The provider's error type name for an HTTP status."""
        default = self.server_error_type if status >= 500 else "invalid_request_error"
        return self.error_types.get(status, default)


class OpenAIDialect(Dialect):
    """`POST /v1/chat/completions`."""

    overload_status = 503
    server_error_type = "server_error"
    error_types = {
        401: "authentication_error",
        403: "permission_error",
        404: "not_found_error",
        429: "requests",
    }

    def parse(self, body: Any) -> ChatRequest:
        """Parse an OpenAI chat completions request."""
        body = _object(body)
        system, prompt, chars = _messages(
            body.get("messages"), system_roles=("system", "developer")
        )
        max_tokens = body.get("max_tokens", body.get("max_completion_tokens"))
        fmt = body.get("response_format")
        if fmt is not None and not isinstance(fmt, dict):
            raise BadRequest("'response_format' must be an object")
        forced = _forced_function(body)
        if forced is not None:
            fmt = _tool_format(body.get("tools"), forced, "function", "parameters")
        return ChatRequest(
            model=_model(body),
            system=system,
            prompt=prompt,
            prompt_tokens=estimate_tokens(chars),
            max_tokens=_max_tokens(max_tokens, required=False),
            stop=_stops(body.get("stop")),
            response_format=fmt,
            forced_tool=forced,
            n=_choices(body.get("n")),
        )

    def success(self, req: ChatRequest, comp: Completion, ident: int, created: int) -> Any:
        """An OpenAI `chat.completion` object; a forced function is answered by a call of it."""
        message: dict[str, Any] = {"role": "assistant", "content": comp.text}
        finish = _finish(comp)
        if req.forced_tool is not None:
            call = {"name": req.forced_tool, "arguments": json.dumps(_tool_input(comp.text))}
            message["content"], finish = None, "tool_calls"
            message["tool_calls"] = [
                {"id": f"call_{ident:016x}", "type": "function", "function": call}
            ]
        choices = [{"index": i, "message": message, "finish_reason": finish} for i in range(req.n)]
        usage = {
            "prompt_tokens": req.prompt_tokens,
            "completion_tokens": comp.tokens,
            "total_tokens": req.prompt_tokens + comp.tokens,
        }
        return {
            "id": f"chatcmpl-{ident:016x}",
            "object": "chat.completion",
            "created": created,
            "model": req.model,
            "choices": choices,
            "usage": usage,
        }

    def cached(self, body: Any, tokens: int) -> None:
        """OpenAI's ``usage.prompt_tokens_details.cached_tokens`` (part of prompt_tokens)."""
        body["usage"]["prompt_tokens_details"] = {"cached_tokens": tokens}

    def error(self, status: int, message: str) -> Any:
        """OpenAI error object."""
        kind = self.error_type(status)
        return {"error": {"message": message, "type": kind, "param": None, "code": None}}

    def rate_limited(self) -> Any:
        """OpenAI's body for a requests-per-minute limit."""
        return {
            "error": {
                "message": "Rate limit reached for requests",
                "type": "requests",
                "code": "rate_limit_exceeded",
            }
        }

    def malformed(self, req: ChatRequest, ident: int, invalid_json: bool) -> bytes:
        """Truncated JSON, or a completion object without `choices`."""
        head = {"id": f"chatcmpl-{ident:016x}", "object": "chat.completion", "model": req.model}
        if invalid_json:
            return json.dumps(head).encode()[:-1] + b', "choices": [{"index": 0, "mess'
        return json.dumps(head).encode()


class AnthropicDialect(Dialect):
    """`POST /v1/messages`."""

    overload_status = 529
    server_error_type = "api_error"
    error_types = {
        400: "invalid_request_error",
        401: "authentication_error",
        403: "permission_error",
        404: "not_found_error",
        413: "request_too_large",
        429: "rate_limit_error",
        529: "overloaded_error",
    }

    def parse(self, body: Any) -> ChatRequest:
        """Parse an Anthropic messages request."""
        body = _object(body)
        system = _text(body.get("system"))
        _, prompt, chars = _messages(body.get("messages"), system_roles=())
        stops = body.get("stop_sequences")
        if stops is not None and not isinstance(stops, list):
            raise BadRequest("'stop_sequences' must be a list of strings")
        choice = body.get("tool_choice")
        forced = (
            choice.get("name")
            if isinstance(choice, dict) and choice.get("type") == "tool"
            else None
        )
        return ChatRequest(
            model=_model(body),
            system=system,
            prompt=prompt,
            prompt_tokens=estimate_tokens(chars + len(system)),
            max_tokens=_max_tokens(body.get("max_tokens"), required=True),
            stop=_stops(stops),
            response_format=None if forced is None else _tool_format(body.get("tools"), forced),
            forced_tool=forced,
        )

    def success(self, req: ChatRequest, comp: Completion, ident: int, created: int) -> Any:
        """An Anthropic `message` object; a forced tool is answered by a `tool_use` of it."""
        if comp.truncated:
            reason = "max_tokens"
        else:
            reason = "end_turn" if comp.stop_sequence is None else "stop_sequence"
        content: list[dict[str, Any]] = [{"type": "text", "text": comp.text}]
        if req.forced_tool is not None:
            use = {"type": "tool_use", "id": f"toolu_{ident:016x}", "name": req.forced_tool}
            content, reason = [{**use, "input": _tool_input(comp.text)}], "tool_use"
        return {
            "id": f"msg_{ident:016x}",
            "type": "message",
            "role": "assistant",
            "model": req.model,
            "content": content,
            "stop_reason": reason,
            "stop_sequence": comp.stop_sequence,
            "usage": {"input_tokens": req.prompt_tokens, "output_tokens": comp.tokens},
        }

    def cached(self, body: Any, tokens: int) -> None:
        """Anthropic's ``usage.cache_read_input_tokens`` (apart from input_tokens)."""
        body["usage"]["input_tokens"] -= tokens
        body["usage"]["cache_read_input_tokens"] = tokens

    def error(self, status: int, message: str) -> Any:
        """Anthropic error object."""
        kind = self.error_type(status)
        return {"type": "error", "error": {"type": kind, "message": message}}

    def rate_limited(self) -> Any:
        """Anthropic's body for a request rate limit."""
        return self.error(429, "Rate limit reached for requests")

    def malformed(self, req: ChatRequest, ident: int, invalid_json: bool) -> bytes:
        """Truncated JSON, or a message object without `content`."""
        head = {"id": f"msg_{ident:016x}", "type": "message", "role": "assistant"}
        if invalid_json:
            return json.dumps(head).encode()[:-1] + b', "content": [{"type": "te'
        return json.dumps({**head, "model": req.model}).encode()


OPENAI = OpenAIDialect()
ANTHROPIC = AnthropicDialect()


def _forced_function(body: dict[str, Any]) -> str | None:
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") == "function":
        function = choice.get("function")
        name = function.get("name") if isinstance(function, dict) else None
        if not isinstance(name, str):
            raise BadRequest("'tool_choice.function.name' must be a string")
        return name
    return None


def _tool_format(tools: Any, name: str, nested: str = "", key: str = "input_schema") -> Any:
    """A JSON-schema response format for the forced tool's input (a 400 if it is not there)."""
    for tool in tools if isinstance(tools, list) else ():
        spec = tool.get(nested) if nested and isinstance(tool, dict) else tool
        if isinstance(spec, dict) and spec.get("name") == name:
            schema = spec.get(key) or {"type": "object"}
            return {"type": "json_schema", "json_schema": {"name": name, "schema": schema}}
    raise BadRequest(f"tool_choice names {name!r}, which is not in 'tools'")


def _tool_input(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {"text": text}
    return value if isinstance(value, dict) else {"value": value}


def _choices(value: Any) -> int:
    if value is None:
        return 1
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 128:
        raise BadRequest("'n' must be an integer from 1 to 128")
    return value


def _finish(comp: Completion) -> str:
    return "length" if comp.truncated else "stop"


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    return body


def _model(body: dict[str, Any]) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("'model' is required and must be a string")
    return model


def _max_tokens(value: Any, *, required: bool) -> int | None:
    if value is None and not required:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise BadRequest("'max_tokens' must be a positive integer")
    return value


def _stops(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(s, str) for s in value):
        return tuple(value)
    raise BadRequest("stop sequences must be a string or a list of strings")


def _messages(messages: Any, system_roles: tuple[str, ...]) -> tuple[str, str, int]:
    """Join system and user contents; also count all content characters."""
    if not isinstance(messages, list) or not messages:
        raise BadRequest("'messages' must be a non-empty list")
    system: list[str] = []
    user: list[str] = []
    chars = 0
    for message in messages:
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise BadRequest("each message must be an object with a 'role'")
        text = _text(message.get("content"))
        chars += len(text)
        role = message["role"]
        if role == "user":
            user.append(text)
        elif role in system_roles:
            system.append(text)
    return "\n".join(system), "\n".join(user), chars


def _text(content: Any) -> str:
    """Plain text of a message content: a string or a list of text parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = (part.get("text") for part in content if isinstance(part, dict))
        return "".join(t for t in texts if isinstance(t, str))
    raise BadRequest("message content must be a string or a list of parts")
