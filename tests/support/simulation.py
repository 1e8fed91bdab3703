"""Helpers for the simulator tests: the contract's request texts, built with its own functions."""

from __future__ import annotations

import re

from app.engine.optimization.prompts import Target, critic_request, optimizer_request
from app.engine.records import FeedbackItem

ANSWER = re.compile(r"Answer:\s*(.+)", re.I)


def verdict(output: str, expected: str) -> str:
    """The ``answer_equals`` feedback text of the contract."""
    found = ANSWER.findall(output)
    if not found:
        return f"The output has no final 'Answer:' line; the expected answer is {expected!r}."
    got = found[-1].strip()
    if got.lower() == expected.lower():
        return f"The final answer {got!r} is correct."
    return f"The final answer was {got!r}; the expected answer is {expected!r}."


def answered(output: str) -> str | None:
    """The last ``Answer:`` value of an output."""
    found = ANSWER.findall(output)
    return found[-1].strip() if found else None


def parameter(name: str, value: str) -> Target:
    return Target(name, "parameter", f"the system prompt {name}", value)


def upstream(node: str) -> Target:
    return Target(node, "input", f"the output of node {node}, inserted into this step's prompt")


def critic_for(
    node: str, system: str, prompt: str, output: str, feedback: list[str], targets: list[Target]
) -> str:
    return critic_request(node, system, prompt, output, feedback, targets)


def optimizer_for(name: str, value: str, texts: list[str], conservatism: float = 0.5) -> str:
    items = [
        FeedbackItem(text=t, target=name, node="count", example=i, score=0.0)
        for i, t in enumerate(texts)
    ]
    return optimizer_request(name, f"the parameter {name}", value, items, conservatism)


def critiques(reply: str) -> dict[str, str]:
    return dict(re.findall(r'<CRITIQUE target="([^"]+)">(.*?)</CRITIQUE>', reply, re.S))
