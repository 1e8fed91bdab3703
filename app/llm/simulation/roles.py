"""Which simulated role a model name selects, and the one entry point that answers."""

from __future__ import annotations

import re

from app.engine.errors import TransientLLMError
from app.llm.simulation import critic, judge, optimizer, task_model
from app.llm.simulation.hashing import fraction

ROLES = ("task", "critic", "judge", "optimizer")
NOISE = frozenset({"throttled", "errors", "slow"})  # transport only: see noise.py
FLAKY_SHARE = 0.1


class SimulatedOutage(TransientLLMError):
    """A simulated role that fails every call (``sim-critic:fail``); a fake server answers 500."""

    def __init__(self, model: str) -> None:
        super().__init__(f"simulated outage of {model}", status_code=500)


def parse_model(model: str) -> tuple[str, frozenset[str]] | None:
    """``(role, variants)`` for a simulation model name, else ``None``.

    >>> role, variants = parse_model("sim-optimizer:harmful:flaky")
    >>> role, sorted(variants)
    ('optimizer', ['flaky', 'harmful'])
    """
    name, *variants = model.split(":")
    role = name.removeprefix("sim-")
    if not name.startswith("sim-") or role not in ROLES:
        return None
    return role, frozenset(variants)


def plain_name(model: str) -> str:
    """``model`` without its noise variants, which never change a reply's content.

    >>> plain_name("sim-critic:throttled:flaky:slow")
    'sim-critic:flaky'
    """
    return ":".join(part for part in model.split(":") if part not in NOISE)


def is_simulation(model: str) -> bool:
    """Whether ``model`` names a simulated role."""
    return parse_model(model) is not None


def answer(model: str, system: str, prompt: str) -> str | None:
    """The reply of simulated ``model``; ``None`` if ``model`` is no simulated role or the
    task model does not recognise the step. Raises :class:`SimulatedOutage` for ``:fail``."""
    parsed = parse_model(model)
    if parsed is None:
        return None
    role, variants = parsed
    if "fail" in variants:
        raise SimulatedOutage(model)
    text = _reply(role, variants, system, prompt)
    if (
        text is not None
        and "flaky" in variants
        and role != "task"
        and _unlucky(model, system, prompt)
    ):
        return _untagged(text)
    return text


def _unlucky(model: str, system: str, prompt: str) -> bool:
    return fraction("flaky", plain_name(model), system, prompt) < FLAKY_SHARE


def _reply(role: str, variants: frozenset[str], system: str, prompt: str) -> str | None:
    if role == "task":
        return task_model.reply(system, prompt)
    if role == "critic":
        return critic.reply(prompt, generic="generic" in variants)
    if role == "optimizer":
        return optimizer.reply(prompt, off="off" in variants, harmful="harmful" in variants)
    return judge.reply(prompt)


def _untagged(text: str) -> str:
    """A malformed reply: the same words with every tag removed."""
    return re.sub(r"</?[A-Z_]+(?:\s[^>]*)?>", "", text).strip() or "I am not sure."
