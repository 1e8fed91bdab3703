"""One node compiled for the scheduler: its neighbours by index and how to compute it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from app.engine.execution.limits import OutputLimits
from app.engine.execution.values import Values, render
from app.engine.graph.messages import text_slots
from app.engine.graph.model import Guard, Node
from app.engine.graph.patterns import Classifier
from app.engine.graph.refs import Ref, Template
from app.engine.llm import LLMRequest

Inline = Callable[[Values, OutputLimits], Any]


@dataclass(frozen=True, slots=True)
class LLMStep:
    """Static part of a model call; ``request()`` adds the rendered text.

    ``options`` are the request's other fields (sampling, tools) as :class:`LLMRequest`
    keywords; ``messages`` is message data whose texts are the templates in ``templates``.
    """

    alias: str
    system: Template
    prompt: Template
    response_format: str | dict[str, Any]
    timeout_s: float | None
    max_retries: int | None
    messages: tuple[dict[str, Any], ...] = ()
    templates: Mapping[str, Template] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)
    twin: int = 0  # its rank among the graph's nodes making this same call (the ledger's sample)

    def request(
        self, model: str, values: Values, limits: OutputLimits | None = None, node: str = ""
    ) -> LLMRequest:
        return LLMRequest(
            model=model,
            system=render(self.system, values, limits, f"system of node {node!r}"),
            prompt=render(self.prompt, values, limits, f"prompt of node {node!r}"),
            response_format=self.response_format,
            messages=self._messages(values, limits, node),
            **self.options,
        )

    def _messages(
        self, values: Values, limits: OutputLimits | None, node: str
    ) -> tuple[dict[str, Any], ...]:
        if not self.messages:
            return ()
        messages: tuple[dict[str, Any], ...] = _copied(self.messages)
        for name, holder, key in text_slots(messages):
            holder[key] = render(self.templates[name], values, limits, f"{name} of node {node!r}")
        return messages

    @property
    def max_tokens(self) -> int | None:
        return self.options.get("max_tokens")

    @property
    def wants_json(self) -> bool:
        return self.response_format != "text"

    @property
    def wants_message(self) -> bool:
        """With tools, the output is the assistant message: ``content`` and ``tool_calls``."""
        return bool(self.options.get("tools"))

    @property
    def choices(self) -> int:
        return int(self.options.get("n") or 1)


def _copied(value: Any) -> Any:
    """A copy of JSON data (dicts and lists copied all the way down): what ``deepcopy`` makes
    of message data, several times faster.

    >>> held = {"content": [{"type": "text", "text": "{q}"}]}
    >>> copy = _copied(held)
    >>> copy == held, copy["content"][0] is held["content"][0]
    (True, False)
    """
    if isinstance(value, dict):
        return {key: _copied(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copied(item) for item in value]
    if isinstance(value, tuple):
        return tuple(_copied(item) for item in value)
    return value


@dataclass(slots=True)
class Step:
    """One node, compiled. ``run`` names the scheduler method that runs it (``run_inline``,
    ``run_classify``, ``run_coalesce`` or ``run_call``); the op's compiler fills the fields
    that method reads."""

    index: int
    node: Node
    deps: tuple[int, ...]
    guard: Guard | None
    guard_ref: Ref | None
    priority: int
    run: str = "run_inline"
    inline: Inline | None = None
    llm: LLMStep | None = None
    tool: str | None = None
    tool_args: tuple[tuple[str, Template], ...] = ()
    coalesce: tuple[Ref, ...] = ()
    classify: tuple[Ref, Classifier] | None = None
    users: tuple[int, ...] = ()
    reads: tuple[tuple[str, Ref], ...] = ()  # each distinct reference, by its text

    @property
    def id(self) -> str:
        return self.node.id
