"""The one way the optimizer's own roles (critic, judge, optimizer) call a model.

A call runs a constant one-node ``llm`` graph through :func:`app.engine.run`, so it goes
through the same resource manager (limits, retries, timeouts) as the pipeline's own calls.
Calls are counted on the :class:`Meter` of the innermost ``with metering(meter):`` block:
``admit`` before the call (so a cap stops it before it is made; the call is counted from
then on, and its :func:`estimate` reserved until it returns), its tokens and cost when it
returns (a failed call counts one call, no tokens).
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
from app.engine.execution.calls import estimate_tokens
from app.engine.graph.model import Graph, InputSpec, LLMNode
from app.engine.llm import LLMRequest
from app.engine.optimization.budget import Estimate, Hold, Meter
from app.engine.optimization.prompts import with_retry_note
from app.engine.optimization.roles import Role, calling_for
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


def estimate(
    resources: Resources, alias: str, system: str, prompt: str, max_tokens: int | None = None
) -> Estimate:
    """What a call may cost before any call of its role returned: its tokens as the
    endpoint's token-rate gate estimates them, at the dearer of the endpoint's two prices.

    >>> estimate(None, "critic", "Be terse.", "Ok?", max_tokens=10)
    Estimate(tokens=13, cost=0.0)
    """
    tokens = estimate_tokens(LLMRequest("", system, prompt, max_tokens=max_tokens))
    return Estimate(tokens, tokens * dearest_price(resources, alias) / 1_000_000)


def dearest_price(resources: Resources, alias: str) -> float:
    """The higher of ``alias``'s two prices per million tokens (0 if it is not configured)."""
    config = resources.config if isinstance(resources, ResourceManager) else resources
    endpoint = None if config is None else config.endpoints.get(alias)
    if endpoint is None:
        return 0.0
    return max(endpoint.input_price_per_million, endpoint.output_price_per_million)


def current_meter() -> Meter | None:
    """The meter of the innermost :func:`metering` block, or ``None``."""
    return _meter.get()


async def ask(alias: str, system: str, prompt: str, *, role: Role, resources: Resources) -> Reply:
    """One model call on endpoint ``alias``; raises ``ExecutionError`` if it fails and
    ``BudgetExhausted`` (before calling) if the meter's caps do not admit it."""
    meter = current_meter()
    hold = (
        None if meter is None else meter.admit(role, 1, estimate(resources, alias, system, prompt))
    )
    inputs = {"system": system, "prompt": prompt}
    try:
        with calling_for(role):
            record = await run(call_graph(alias), inputs, resources=resources, record=True)
    except BaseException:
        _spent(meter, role, hold, None)  # a failed call: one call, no tokens
        raise
    usage = record.nodes[_NODE].usage
    _spent(meter, role, hold, usage)
    return Reply(str(record.outputs[_NODE]), usage, 1)


def _spent(meter: Meter | None, role: Role, hold: Hold | None, usage: LLMUsage | None) -> None:
    """Count one call that ended, with its tokens and cost when it returned them."""
    if meter is None:
        return
    if usage is None:
        meter.spend(role, calls=1, hold=hold)
        return
    meter.spend(
        role, calls=1, input_tokens=usage.input_tokens, output_tokens=usage.output_tokens,
        cost=usage.cost, hold=hold,
    )  # fmt: skip


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
