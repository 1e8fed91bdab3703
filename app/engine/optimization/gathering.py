"""One step's feedback: every example's backward pass, then each parameter's items in
batch order, so the order the critic calls finished in never changes what the optimizer
is sent.

>>> from app.engine.records import FeedbackItem
>>> by_node([FeedbackItem("x", "p", "extract_a"), FeedbackItem("y", "p", "extract_b"),
...          FeedbackItem("z", "p", "extract_a")])
{'extract_a': 2, 'extract_b': 1}
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from app.engine.errors import EngineError
from app.engine.optimization.backward import BackwardResult
from app.engine.optimization.budget import BudgetExhausted
from app.engine.optimization.evaluate import Scored
from app.engine.parameter import Parameter
from app.engine.records import FeedbackItem

if TYPE_CHECKING:
    from app.engine.resources.config import ResourceConfig
    from app.engine.resources.manager import ResourceManager


async def backward_all(
    scored: Sequence[Scored], critic: str,
    resources: ResourceConfig | ResourceManager | None,
) -> list[BackwardResult]:  # fmt: skip
    """Every example's backward pass, concurrently, in batch order. A pass that failed is a
    result holding its error; ``BudgetExhausted`` is raised once every pass has ended."""
    work = [_backward(item, critic, resources) for item in scored]
    outcomes = await asyncio.gather(*work, return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
    return [o for o in outcomes if isinstance(o, BackwardResult)]


async def _backward(
    item: Scored, critic: str, resources: ResourceConfig | ResourceManager | None
) -> BackwardResult | None:
    if item.feedback is None:  # the forward pass failed: nothing to go backward through
        return None
    try:
        return await item.feedback.backward(critic=critic, resources=resources)
    except BudgetExhausted:
        raise
    except EngineError as error:
        return BackwardResult(errors=[f"backward of example {item.example.id!r}: {error}"])


def collect(
    results: Sequence[BackwardResult], graph_names: Mapping[str, Parameter],
    trained: Sequence[Parameter],
) -> None:  # fmt: skip
    """Give each trained parameter the items the results hold for its graph name, in order."""
    mine = {id(param) for param in trained}
    for param in trained:
        param.feedback.clear()
    for result in results:
        for graph_name, items in result.parameters.items():
            owner = graph_names.get(graph_name)
            if owner is not None and id(owner) in mine:
                owner.feedback.extend(items)


def rotate_texts(scored: Sequence[Scored], key: str) -> None:
    """The shuffled-feedback control: each example's loss text replaced by another's (a
    seeded rotation of the batch, so no example keeps its own)."""
    ran = [s.feedback for s in scored if s.feedback is not None]
    if len(ran) < 2:
        return
    shift = random.Random(key).randrange(1, len(ran))
    texts = [f.text for f in ran]
    for i, feedback in enumerate(ran):
        feedback.text = texts[(i + shift) % len(ran)]


def by_node(items: Sequence[FeedbackItem]) -> dict[str, int]:
    """How many items each call site wrote."""
    counts: dict[str, int] = {}
    for item in items:
        counts[item.node] = counts.get(item.node, 0) + 1
    return counts
