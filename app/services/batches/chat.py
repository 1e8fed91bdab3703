"""A ``/v1/chat/completions`` line's body as a one-node ``llm`` graph and the inputs to run it.

The body is checked with the rules of an ``llm`` node's chat (:mod:`app.engine.chat_body`):
every message role (system, developer, user with text and image parts, assistant with tool
calls, tool), ``tools``, ``tool_choice`` and the sampling fields pass on to the node.
``stream`` may only be false; ``user`` is accepted and not used. Each text of the messages
becomes an input of the graph (``t0``, ``t1`` ...) that the node's messages refer to, so a
text is sent as it is, never read as a template, and the lines of one shape share one
compiled graph (:attr:`ChatCall.shape`). :class:`ChatCalls` checks a body once per shape
of its fields: the lines of a batch usually differ only in their message texts.

>>> USER = [{"role": "user", "content": "{Hi}"}]
>>> call = chat_call({"model": "m", "messages": USER, "top_p": 0.5})
>>> call.node["messages"], call.texts, call.node["top_p"]
([{'role': 'user', 'content': '{t0}'}], {'t0': '{Hi}'}, 0.5)
>>> chat_call({"model": "m", "messages": USER, "top_q": 1})  # doctest: +IGNORE_EXCEPTION_DETAIL
Traceback (most recent call last):
...
Refused: body.top_q: unsupported field
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import ValidationError

from app.engine.chat_body import ChatBody, node_fields
from app.engine.graph.messages import text_slots

IGNORED = ("stream", "user")
MAX_KNOWN = 256  # checked bodies a ChatCalls keeps


class Refused(ValueError):
    """The body asks for what cannot be served; the message names the field."""


@dataclass(frozen=True, slots=True)
class ChatCall:
    """What one line asks the model: the ``llm`` node's fields, its texts as inputs."""

    model: str
    node: dict[str, Any]  # the node's fields; message texts are ``{tN}``
    texts: dict[str, str]  # tN -> the text, as the line gave it
    shape: bytes  # equal for lines that can share one compiled graph
    fields: tuple[str, ...]  # the optional fields set, named as providers refuse them


def _call(model: str, node: dict[str, Any], texts: dict[str, str]) -> ChatCall:
    named = [name for name in node if name not in ("messages", "response_format")]
    fields = tuple(name for name in named if name != "n" or node["n"] > 1)  # ``n``: > 1
    return ChatCall(model, node, texts, orjson.dumps(node, option=orjson.OPT_SORT_KEYS), fields)


def chat_call(body: dict[str, Any]) -> ChatCall:
    """The call ``body`` asks for; :class:`Refused` naming the first wrong field."""
    if body.get("stream") not in (None, False):
        raise Refused(f"body.stream must be false (got {body['stream']!r})")
    try:
        parsed = ChatBody.model_validate({k: v for k, v in body.items() if k not in IGNORED})
    except ValidationError as exc:
        raise Refused(_first_issue(exc)) from None
    messages = [m.model_dump(mode="json", exclude_none=True) for m in parsed.messages]
    texts: dict[str, str] = {}
    for at, (_, holder, key) in enumerate(text_slots(messages)):
        texts[f"t{at}"], holder[key] = holder[key], f"{{t{at}}}"
    return _call(parsed.model, {"messages": messages, **node_fields(parsed)}, texts)


class ChatCalls:
    """:func:`chat_call` for many lines, each body shape checked once: a body whose fields
    and messages equal an earlier one's but for the text of string contents (which no rule
    reads) takes that one's checked call with its own texts. Refusals are never kept.

    >>> calls = ChatCalls()
    >>> first = calls.call({"model": "m", "messages": [{"role": "user", "content": "a"}]})
    >>> again = calls.call({"model": "m", "messages": [{"role": "user", "content": "b"}]})
    >>> again.node is first.node, again.texts
    (True, {'t0': 'b'})
    """

    def __init__(self, size: int = MAX_KNOWN) -> None:
        self._known: dict[bytes, ChatCall] = {}
        self._size = size

    def call(self, body: dict[str, Any]) -> ChatCall:
        """The call ``body`` asks for; :class:`Refused` naming the first wrong field."""
        key = _key(body)
        known = self._known.get(key) if key is not None else None
        if known is None:
            return self._checked(key, body)
        texts = {f"t{at}": holder[name] for at, (_, holder, name) in enumerate(
            text_slots(body["messages"]))}  # fmt: skip
        return ChatCall(known.model, known.node, texts, known.shape, known.fields)

    def _checked(self, key: bytes | None, body: dict[str, Any]) -> ChatCall:
        call = chat_call(body)
        if key is not None:
            if len(self._known) >= self._size:  # the oldest goes
                del self._known[next(iter(self._known))]
            self._known[key] = call
        return call


def _key(body: dict[str, Any]) -> bytes | None:
    """The body with each string content blanked, encoded (``None``: not one to keep).

    Only whether a content is a string (not its text) decides a check, so bodies of one key
    are accepted or refused alike, into the same node.
    """
    messages = body.get("messages")
    if not isinstance(messages, list):
        return None
    blanked = [
        {**m, "content": ""} if isinstance(m, dict) and isinstance(m.get("content"), str) else m
        for m in messages
    ]
    try:
        return orjson.dumps({**body, "messages": blanked, "user": None})
    except TypeError:  # not JSON data (orjson's error is a TypeError)
        return None


def _first_issue(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in error["loc"])
    message = "unsupported field" if error["type"] == "extra_forbidden" else error["msg"]
    return f"body{where}: {message}"
