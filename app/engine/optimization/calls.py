"""The one way the optimizer's own roles (critic, judge, optimizer) call a model.

A call runs a constant one-node ``llm`` graph through :func:`app.engine.run`, so it goes
through the same resource manager (limits, retries, timeouts) as the pipeline's own calls.
Calls are counted on the :class:`Meter` of the innermost ``with metering(meter):`` block:
``admit`` before the call (so a cap stops it before it is made; the call is counted from
then on), its tokens and cost when it returns (a failed call counts one call, no tokens).
Outside such a block nothing is counted.

>>> import asyncio
>>> from app.engine.testing import ScriptedLLM, scripted_manager
>>> from app.engine.optimization.budget import Meter
>>> resources = scripted_manager({"critic": ScriptedLLM(lambda request: "fine")})
>>> meter = Meter()
>>> async def critic_says_fine():
...     with metering(meter):
...         return await ask("critic", "Be terse.", "Ok?", role=Role.BACKWARD, resources=resources)
>>> asyncio.run(critic_says_fine()).text, meter.by_role[Role.BACKWARD].calls
('fine', 1)
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TypeVar

from app.engine.execution.api import run
from app.engine.graph.model import Graph, InputSpec, LLMNode
from app.engine.optimization.budget import Meter
from app.engine.optimization.prompts import with_retry_note
from app.engine.optimization.roles import Role
from app.engine.records import LLMUsage
from app.engine.resources.config import ResourceConfig
from app.engine.resources.manager import ResourceManager

T = TypeVar("T")
Resources = ResourceConfig | ResourceManager | None

_NODE = "call"
_meter: ContextVar[Meter | None] = ContextVar("optimization_meter", default=None)


@dataclass(slots=True)
class Reply:
    """A model's reply: its text, what the call(s) cost, and how many requests it took
    (1 for :func:`ask`; for :func:`ask_parsed` the requests made, usage summed over them)."""

    text: str
    usage: LLMUsage | None
    attempts: int


@contextmanager
def metering(meter: Meter | None) -> Iterator[Meter | None]:
    """Count the calls made inside the block on ``meter`` (``None``: count nothing)."""
    token = _meter.set(meter)
    try:
        yield meter
    finally:
        _meter.reset(token)


def current_meter() -> Meter | None:
    """The meter of the innermost :func:`metering` block, or ``None``."""
    return _meter.get()


async def ask(alias: str, system: str, prompt: str, *, role: Role, resources: Resources) -> Reply:
    """One model call on endpoint ``alias``; raises ``ExecutionError`` if it fails and
    ``BudgetExhausted`` (before calling) if the meter's caps do not admit it."""
    meter = current_meter()
    if meter is not None:
        meter.admit(role)
        # NOTE: the call is counted as soon as it is admitted, so concurrent calls cannot all
        # pass a cap that only one of them fits under; its tokens are added when it returns.
        meter.spend(role, calls=1)
    inputs = {"system": system, "prompt": prompt}
    record = await run(call_graph(alias), inputs, resources=resources, record=True)
    usage = record.nodes[_NODE].usage
    if meter is not None and usage is not None:
        meter.spend(
            role, calls=0, input_tokens=usage.input_tokens, output_tokens=usage.output_tokens,
            cost=usage.cost,
        )  # fmt: skip
    return Reply(str(record.outputs[_NODE]), usage, 1)


async def ask_parsed(
    alias: str,
    system: str,
    prompt: str,
    parse: Callable[[str], T | None],
    *,
    role: Role,
    resources: Resources,
    attempts: int = 3,
) -> tuple[T | None, Reply]:
    """``(parse(reply), reply)``, asking again with a ``<RETRY>`` note while ``parse`` returns
    ``None``, at most ``attempts`` requests; ``(None, last reply)`` if none parsed."""
    replies: list[Reply] = []
    for attempt in range(1, max(1, attempts) + 1):
        asked = prompt if attempt == 1 else with_retry_note(prompt, attempt)
        reply = await ask(alias, system, asked, role=role, resources=resources)
        replies.append(reply)
        parsed = parse(reply.text)
        if parsed is not None:
            return parsed, _combined(replies)
    return None, _combined(replies)


def _combined(replies: list[Reply]) -> Reply:
    usages = [reply.usage for reply in replies if reply.usage is not None]
    last = replies[-1]
    if len(usages) < 2:
        return Reply(last.text, last.usage, len(replies))
    total = LLMUsage(
        alias=usages[-1].alias,
        model=usages[-1].model,
        input_tokens=sum(u.input_tokens for u in usages),
        output_tokens=sum(u.output_tokens for u in usages),
        latency_s=sum(u.latency_s for u in usages),
        finish_reason=usages[-1].finish_reason,
        cost=sum(u.cost for u in usages),
        queued_s=sum(u.queued_s for u in usages),
    )
    return Reply(last.text, total, len(replies))


@functools.lru_cache(maxsize=256)
def call_graph(alias: str) -> Graph:
    """The constant graph of one call on ``alias``: inputs ``system`` and ``prompt``."""
    return Graph(
        name=f"optimization-call-{alias}",
        inputs={"system": InputSpec(), "prompt": InputSpec()},
        nodes=[LLMNode(op="llm", id=_NODE, alias=alias, system="{system}", prompt="{prompt}")],
        outputs={_NODE: _NODE},
    )
