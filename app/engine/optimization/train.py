"""``train()``: optimize a module's parameters on a dataset, in one call.

>>> import inspect
>>> list(inspect.signature(train).parameters)[:4]
['module', 'trainset', 'loss', 'optimizer']
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from app.engine.graph.model import Graph
from app.engine.module import InferenceModule
from app.engine.optimization.budget import Budget
from app.engine.optimization.dataset import Example
from app.engine.optimization.history import TrainingHistory
from app.engine.optimization.optimizer import Optimizer
from app.engine.optimization.trainer import EventSink, Schedule, Trainer

if TYPE_CHECKING:
    from app.engine.optimization.losses import Loss
    from app.engine.resources.config import ResourceConfig
    from app.engine.resources.manager import ResourceManager


async def train(
    module: InferenceModule | Graph,
    trainset: Iterable[Example | Mapping[str, Any]],
    loss: Loss,
    optimizer: Optimizer,
    *,
    metric: Loss | None = None,
    epochs: int = 1,
    batch_size: int = 4,
    shuffle: bool = True,
    valset: Iterable[Example | Mapping[str, Any]] | None = None,
    seed: int = 0,
    min_delta: float = 0.0,
    patience: int | None = None,
    target: float | None = None,
    budget: Budget | None = None,
    on_event: EventSink | None = None,
    resources: ResourceConfig | ResourceManager | None = None,
    failure_score: float = 0.0,
    stall_steps: int = 3,
    shuffle_feedback: bool = False,
    clock: Callable[[], float] | None = None,
) -> TrainingHistory:
    """Run a :class:`Trainer` to its end and return the history; the parameters are left
    holding the best values. ``module`` may be a plain :class:`Graph` trained through
    ``SFAOptimizer(graph_parameters(graph))``. Without a ``valset`` the gate scores each
    proposal on its own batch. ``metric`` (default: ``loss``) is what the baseline, the gate,
    ``target`` and the best values score by; the training feedback comes from ``loss``.

    ``shuffle_feedback`` is a negative control: the loss texts are rotated across the
    examples of each batch before the backward pass, so feedback no longer matches its
    example. ``clock`` replaces the wall clock of the ``max_wall_s`` budget (for tests).
    """
    schedule = Schedule(
        epochs=epochs, batch_size=batch_size, shuffle=shuffle, seed=seed, min_delta=min_delta,
        patience=patience, target=target, failure_score=failure_score, stall_steps=stall_steps,
        shuffle_feedback=shuffle_feedback,
    )  # fmt: skip
    trainer = Trainer(
        module, trainset, loss, optimizer, valset=valset, schedule=schedule, budget=budget,
        resources=resources, on_event=on_event, clock=clock, metric=metric,
    )  # fmt: skip
    while not trainer.done:
        await trainer.step()
    return trainer.history
