"""One node compiled for the scheduler: its neighbours by index and how to compute it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.engine.execution.limits import OutputLimits
from app.engine.execution.values import Values, render
from app.engine.graph.model import Guard, Node
from app.engine.graph.patterns import Classifier
from app.engine.graph.refs import Ref, Template
from app.engine.llm import LLMRequest

Inline = Callable[[Values, OutputLimits], Any]


@dataclass(frozen=True, slots=True)
class LLMStep:
    """Static part of a model call; ``request()`` adds the rendered text."""

    alias: str
    system: Template
    prompt: Template
    temperature: float | None
    max_tokens: int | None
    stop: tuple[str, ...] | None
    seed: int | None
    response_format: str | dict[str, Any]
    timeout_s: float | None
    max_retries: int | None

    def request(
        self, model: str, values: Values, limits: OutputLimits | None = None, node: str = ""
    ) -> LLMRequest:
        return LLMRequest(
            model=model,
            system=render(self.system, values, limits, f"system of node {node!r}"),
            prompt=render(self.prompt, values, limits, f"prompt of node {node!r}"),
            temperature=self.temperature,
            max_tokens=self.max_tokens,
            stop=self.stop,
            seed=self.seed,
            response_format=self.response_format,
        )

    @property
    def wants_json(self) -> bool:
        return self.response_format != "text"


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
