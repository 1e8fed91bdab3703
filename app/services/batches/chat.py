"""A ``/v1/chat/completions`` line's body as what the engine's LLM request carries today.

The engine's request is one system text, one user text and sampling options, so a body maps
as: ``system`` and ``developer`` messages -> the system text, ``user`` messages -> the prompt
(each joined by a blank line; content as a string or a list of ``text`` parts), and
``temperature``, ``max_tokens`` (or ``max_completion_tokens``), ``stop``, ``seed`` and
``response_format`` as they are. ``n`` may only be 1 and ``stream`` only false; ``user`` is
accepted and not used. Any other field, role or content part is refused, naming it.

>>> call = chat_call({"model": "m", "messages": [{"role": "user", "content": "Hi"}], "seed": 3})
>>> call.prompt, call.seed, call.response_format
('Hi', 3, 'text')
>>> chat_call({"model": "m", "messages": [], "top_p": 0.5})  # doctest: +IGNORE_EXCEPTION_DETAIL
Traceback (most recent call last):
...
Refused: unsupported field(s): top_p
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SUPPORTED = frozenset(
    {"model", "messages", "temperature", "max_tokens", "max_completion_tokens", "stop", "seed",
     "response_format", "n", "stream", "user"}
)  # fmt: skip
SYSTEM_ROLES = ("system", "developer")
MAX_STOP = 16


class Refused(ValueError):
    """The body asks for what cannot be served; the message names the field."""


@dataclass(frozen=True, slots=True)
class ChatCall:
    """What one line asks the model, in the engine's terms."""

    model: str
    system: str
    prompt: str
    temperature: float | None
    max_tokens: int | None
    stop: tuple[str, ...] | None
    seed: int | None
    response_format: str | dict[str, Any]


def chat_call(body: dict[str, Any]) -> ChatCall:
    """The call ``body`` asks for; :class:`Refused` naming the first wrong field."""
    extra = sorted(set(body) - SUPPORTED)
    if extra:
        raise Refused(f"unsupported field(s): {', '.join(extra)}")
    _only(body, "n", 1)
    _only(body, "stream", False)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise Refused("body.model must be a non-empty string")
    system, prompt = _messages(body.get("messages"))
    return ChatCall(
        model, system, prompt, _temperature(body.get("temperature")), _max_tokens(body),
        _stop(body.get("stop")), _seed(body.get("seed")), _format(body.get("response_format")),
    )  # fmt: skip


def _only(body: dict[str, Any], name: str, allowed: object) -> None:
    if name in body and body[name] is not None and body[name] != allowed:
        raise Refused(f"body.{name} must be {allowed!r} (got {body[name]!r})")


def _messages(messages: Any) -> tuple[str, str]:
    if not isinstance(messages, list) or not messages:
        raise Refused("body.messages must be a non-empty list")
    system: list[str] = []
    user: list[str] = []
    for at, message in enumerate(messages):
        where = f"body.messages[{at}]"
        if not isinstance(message, dict):
            raise Refused(f"{where} must be an object")
        role = message.get("role")
        text = _content(message.get("content"), where)
        if role in SYSTEM_ROLES:
            system.append(text)
        elif role == "user":
            user.append(text)
        else:
            raise Refused(f"{where}.role {role!r} is not supported (system, developer, user)")
    if not user:
        raise Refused("body.messages has no user message")
    return "\n\n".join(system), "\n\n".join(user)


def _content(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise Refused(f"{where}.content must be a string or a list of text parts")
    texts: list[str] = []
    for at, part in enumerate(content):
        if not isinstance(part, dict) or part.get("type") != "text":
            raise Refused(f"{where}.content[{at}] is not a text part (only text is supported)")
        if not isinstance(part.get("text"), str):
            raise Refused(f"{where}.content[{at}].text must be a string")
        texts.append(part["text"])
    return "".join(texts)


def _temperature(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 2:
        raise Refused("body.temperature must be a number from 0 to 2")
    return float(value)


def _max_tokens(body: dict[str, Any]) -> int | None:
    name = "max_completion_tokens" if "max_completion_tokens" in body else "max_tokens"
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= 1_000_000:
        raise Refused(f"body.{name} must be an integer from 1 to 1000000")
    return value


def _stop(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    stops = [value] if isinstance(value, str) else value
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
        raise Refused("body.stop must be a string or a list of strings")
    if len(stops) > MAX_STOP:
        raise Refused(f"body.stop has more than {MAX_STOP} strings")
    return tuple(stops)


def _seed(value: Any) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise Refused("body.seed must be an integer")
    return value


def _format(value: Any) -> str | dict[str, Any]:
    if value is None:
        return "text"
    kind = value.get("type") if isinstance(value, dict) else None
    if kind == "text":
        return "text"
    if kind == "json_object":
        return "json"
    if kind == "json_schema" and isinstance(value.get("json_schema"), dict):
        return dict(value)  # passed to the provider as it is
    raise Refused("body.response_format.type must be text, json_object or json_schema")
