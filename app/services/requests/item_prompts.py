"""The rendered prompt of every ``llm`` node of a stored item, rendered again on demand.

Rendering is pure: an llm node's messages are its templates filled from the graph's
parameters, the item's input and the outputs of the nodes it reads, and every node's output
is stored. So the item page shows each node's prompt as the engine sent it without the
runner storing it (which would double what a job writes), with the same function the engine
calls before a model call (``LLMStep.request``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from app.engine import EngineError, NodeStatus, OutputLimits
from app.engine.execution.plan import Plan
from app.engine.execution.step import Step

# Statuses of an llm node that rendered its prompt: it was called (or failed on the way).
_RENDERED = frozenset({NodeStatus.SUCCEEDED.value, NodeStatus.FAILED.value})


@dataclass(frozen=True, slots=True)
class PromptMessage:
    """One message of a rendered conversation; ``content`` is a text or a list of parts."""

    role: str
    content: Any


@dataclass(frozen=True, slots=True)
class RenderedPrompt:
    """An llm node's conversation as sent, or why it could not be rendered again."""

    messages: list[PromptMessage]
    error: str | None = None


def stored_values(
    plan: Plan, item_input: Any, outputs: Mapping[str, tuple[str, Any]]
) -> dict[str, Any]:
    """What the scheduler's values were at the item's end: the graph's parameters, the
    item's inputs, then each succeeded node's output (``outputs``: node -> status, output)."""
    inputs = item_input if isinstance(item_input, dict) else {}
    values: dict[str, Any] = {**plan.parameters, **inputs}
    for node, (status, output) in outputs.items():
        if status == NodeStatus.SUCCEEDED.value:
            values[node] = output
    return values


def rendered_prompts(
    plan: Plan,
    item_input: Any,
    outputs: Mapping[str, tuple[str, Any]],
    limits: OutputLimits | None = None,
) -> dict[str, RenderedPrompt]:
    """Each llm node's rendered conversation, for the nodes that rendered it (succeeded or
    failed; a skipped or cancelled node never did)."""
    values = stored_values(plan, item_input, outputs)
    shown = (s for s in _llm_steps(plan.steps) if outputs.get(s.id, ("",))[0] in _RENDERED)
    return {step.id: _render(step, values, limits) for step in shown}


def _llm_steps(steps: Iterable[Step]) -> Iterable[Step]:
    return (step for step in steps if step.llm is not None)


def _render(step: Step, values: Mapping[str, Any], limits: OutputLimits | None) -> RenderedPrompt:
    assert step.llm is not None
    try:
        request = step.llm.request("", values, limits, step.id)
    except KeyError as exc:
        return RenderedPrompt([], f"cannot be rendered again: {exc} was not stored")
    except EngineError as exc:  # a path into a stored value that does not resolve, a limit
        return RenderedPrompt([], f"cannot be rendered again: {exc}")
    conversation = request.conversation()
    return RenderedPrompt([PromptMessage(m["role"], m.get("content")) for m in conversation])
