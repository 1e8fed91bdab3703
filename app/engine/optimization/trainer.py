"""``Trainer``: the training loop as a resumable state machine.

Each ``await trainer.step()`` does one unit of work and leaves ``trainer.state`` (a
JSON-ready :class:`TrainerState`) consistent: the first scores the seed values on the
validation set (the baseline), every later one is a training step:

1. forward (recorded) on the next mini-batch and the loss of each example;
2. the backward pass of each example through the critic (concurrently), the feedback
   gathered on each parameter in batch order (so concurrency never changes it);
3. ``optimizer.step()`` proposes new texts; the validation gate applies them, scores them
   by the selection ``metric`` (default: the loss) on every validation item (or, without a
   valset, on the batch) and keeps them only if the mean paired gain over the incumbent on
   the same items is > 0 and >= ``min_delta``.

The proposals of one step are gated together. The run stops at ``epochs``
(``max_epochs``), after ``patience`` steps without an accepted proposal
(``early_stopped``), when the incumbent's validation mean reaches ``target``
(``target_reached``; only with a valset), when the budget cannot pay for the next dispatch
(``budget_exhausted``, keeping the best so far), or ``stalled`` when no step so far yielded
a proposal: ``stall_steps`` in a row, or all of them. The root error (e.g. why every critic
call failed) is kept in the history, as is the cap that stopped a run.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from app.engine.errors import ConfigError, EngineError
from app.engine.execution.program import program_for
from app.engine.graph.model import Graph
from app.engine.module import InferenceModule
from app.engine.optimization.budget import Budget, BudgetExhausted, Meter
from app.engine.optimization.calls import metering
from app.engine.optimization.dataset import Example, as_examples
from app.engine.optimization.edits import text_diff
from app.engine.optimization.evaluate import Scored, rescore, score_examples
from app.engine.optimization.gate import decide
from app.engine.optimization.gathering import backward_all, by_node, collect, rotate_texts
from app.engine.optimization.history import (
    ProposalRecord,
    StepRecord,
    StopReason,
    TrainingEvent,
    TrainingHistory,
)
from app.engine.optimization.optimizer import Optimizer, Proposal
from app.engine.optimization.preflight import check_parameters
from app.engine.optimization.roles import Role
from app.engine.optimization.state import TrainerState
from app.engine.optimization.stats import mean
from app.engine.parameter import Parameter

if TYPE_CHECKING:
    from app.engine.optimization.losses import Loss
    from app.engine.resources.config import ResourceConfig
    from app.engine.resources.manager import ResourceManager

EventSink = Callable[[str, dict[str, Any]], None]


@dataclass(frozen=True, slots=True)
class Schedule:
    """How a run is scheduled and when it stops (see :class:`Trainer`)."""

    epochs: int = 1
    batch_size: int = 4
    shuffle: bool = True
    seed: int = 0
    min_delta: float = 0.0
    patience: int | None = None
    target: float | None = None
    failure_score: float = 0.0
    stall_steps: int = 3
    shuffle_feedback: bool = False  # a negative control: loss texts rotated across the batch

    def check(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.stall_steps < 1:
            raise ConfigError("epochs, batch_size and stall_steps must be at least 1")
        if self.patience is not None and self.patience < 1:
            raise ConfigError("patience must be at least 1")


class Trainer:
    """Train ``optimizer``'s parameters of ``module`` on ``trainset`` with ``loss``.

    ``metric`` (default: ``loss``) selects: the baseline, the validation gate, ``target``
    and the best values score by it, while the training batches' feedback comes from
    ``loss``.

    ``module`` is an :class:`InferenceModule`, or a :class:`Graph` whose parameters the
    optimizer holds by graph name (``SFAOptimizer(graph_parameters(graph))``); each forward
    pass then runs the graph with the parameters' current values.

    Preflight runs here, before any call: a parameter the optimizer was given that the
    traced forward does not use, or that no output depends on, raises ``ConfigError``.
    """

    def __init__(
        self,
        module: InferenceModule | Graph,
        trainset: Iterable[Example | Mapping[str, Any]],
        loss: Loss,
        optimizer: Optimizer,
        *,
        valset: Iterable[Example | Mapping[str, Any]] | None = None,
        schedule: Schedule | None = None,
        budget: Budget | None = None,
        resources: ResourceConfig | ResourceManager | None = None,
        on_event: EventSink | None = None,
        clock: Callable[[], float] | None = None,
        state: TrainerState | None = None,
        metric: Loss | None = None,
    ) -> None:
        if not isinstance(module, InferenceModule | Graph):
            raise ConfigError("train: the target must be an InferenceModule or a Graph")
        self.module, self.loss, self.optimizer = module, loss, optimizer
        self.metric = loss if metric is None else metric
        self.schedule = schedule or Schedule()
        self.schedule.check()
        self.trainset = as_examples(trainset)
        self.valset = None if valset is None else as_examples(valset)
        if not self.trainset or self.valset == []:
            raise ConfigError("train: the trainset and the valset must not be empty")
        self.resources = resources
        self.on_event = on_event
        self._used = self._preflight()
        self._graph: tuple[dict[str, str], Graph] | None = None
        self._bind_optimizer()
        self.meter = Meter(budget, clock) if clock is not None else Meter(budget)
        fingerprint = self._fingerprint()
        if state is not None and state.fingerprint != fingerprint:
            raise ConfigError(
                "resume: the state was saved by a run with another schedule, datasets or parameters"
            )
        fresh = TrainerState(values=self._values(), fingerprint=fingerprint)
        self.state = state if state is not None else fresh
        self._restore()

    @classmethod
    def resume(cls, state: TrainerState, *args: Any, **kwargs: Any) -> Trainer:
        """A trainer continuing from ``state``; the other arguments as to the constructor."""
        return cls(*args, **kwargs, state=state)

    # -- setup -------------------------------------------------------------------------

    def _preflight(self) -> dict[str, Parameter]:
        """The graph's parameters by name, once every selected one is checked trainable."""
        if isinstance(self.module, Graph):
            graph = self.module
            used = {n: p for n, p in self.optimizer.named() if n in graph.parameters}
        else:
            traced = program_for(self.module).traced
            assert traced is not None  # a module's program is always traced
            graph, used = traced.graph, dict(traced.parameters)
            self.optimizer.adopt_names(used)
        check_parameters(self.optimizer.named(), graph, used)
        return used

    def _target(self) -> InferenceModule | Graph:
        """What a forward pass runs: the module, or the graph with the current values."""
        if isinstance(self.module, InferenceModule):
            return self.module
        values = {name: param.value for name, param in self._used.items()}
        if self._graph is None or self._graph[0] != values:
            self._graph = (values, self.module.with_parameters(values))
        return self._graph[1]

    def _fingerprint(self) -> str:
        """A hash of what a resumed run must share with the one that saved the state."""
        data = {
            "schedule": asdict(self.schedule),
            "parameters": [name for name, _ in self.optimizer.named()],
            "train": [_item(example) for example in self.trainset],
            "val": None if self.valset is None else [_item(example) for example in self.valset],
        }
        text = json.dumps(data, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def _values(self) -> dict[str, str]:
        return {name: param.value for name, param in self.optimizer.named()}

    def _restore(self) -> None:
        for name, param in self.optimizer.named():
            if name in self.state.values:
                param.value = self.state.values[name]
        self.state.load_meter(self.meter)

    def _bind_optimizer(self) -> None:
        """An unbound optimizer calls under the run's resources (or the module's)."""
        if self.optimizer.resources is not None:
            return
        binding = self.module.__dict__.get("_binding")
        resources = self.resources or getattr(binding, "resources", None)
        if resources is None:
            raise ConfigError("train: bind the optimizer (optimizer.bind(...)) or pass resources=")
        self.optimizer.bind(resources)

    # -- the state machine -------------------------------------------------------------

    @property
    def done(self) -> bool:
        return self.state.finished

    @property
    def history(self) -> TrainingHistory:
        return self.state.history

    async def step(self) -> None:
        """Do the next unit of work (the baseline, then one training step each call)."""
        if self.done:
            return
        with metering(self.meter):
            try:
                await self._by_the_deadline()
            except BudgetExhausted as exhausted:
                self._emit(TrainingEvent.BUDGET, {"exhausted": exhausted.cap, **self._usage()})
                self._finish(StopReason.BUDGET_EXHAUSTED, str(exhausted))
            except EngineError as error:
                self._finish(StopReason.ERROR, f"{type(error).__name__}: {error}")
        self.state.save_meter(self.meter)

    async def _by_the_deadline(self) -> None:
        """The next unit of work, stopped where it is when ``max_wall_s`` passes: what a cut
        step changed is not in the state (the gate reverts its proposals), so the state
        stays that of the last finished step."""
        deadline = asyncio.timeout(self.meter.wall_left())
        try:
            async with deadline:
                await (self._train_step() if self.state.started else self._baseline())
        except TimeoutError:
            if not deadline.expired():
                raise
            raise self.meter.wall_exhausted() from None

    async def _baseline(self) -> None:
        history = self.state.history
        history.best_values = self._values()
        self._emit(
            TrainingEvent.RUN_STARTED, {"parameters": self._values(), "seed": self.schedule.seed}
        )
        if self.valset is not None:
            scored = await self._score(self.valset, Role.VALIDATION, self.metric)
            self.state.best_scores = [s.score for s in scored]
            history.baseline = history.best_score = mean(self.state.best_scores)
            self._emit(
                TrainingEvent.VALIDATED, {"step": 0, "score": history.baseline, "n": len(scored)}
            )
        self.state.started = True
        self._check_target()

    async def _train_step(self) -> None:
        batch = self._next_batch()
        if batch is None:
            self._finish_epochs()
            return
        number, spent = self.state.step + 1, self._calls()
        self._emit(TrainingEvent.STEP_STARTED, {"step": number, "epoch": self.state.epoch})
        scored = await self._score(batch, Role.TASK, self.loss)
        record = StepRecord(
            self.state.epoch, number, [s.example.id for s in scored], [s.score for s in scored]
        )
        record.errors = [s.error for s in scored if s.error is not None]
        self._emit(TrainingEvent.BATCH_SCORED, {"step": number, "scores": record.scores})
        await self._gather_feedback(scored, record)
        proposals = await self.optimizer.step()
        self._note_proposals(proposals, record)
        if proposals:
            await self._gate(proposals, scored, record)
        record.calls = {role: n - spent[role] for role, n in self._calls().items()}
        self._end_step(record, len(batch))

    # -- batches -----------------------------------------------------------------------

    def _next_batch(self) -> list[Example] | None:
        """The next mini-batch, moving to the next epoch when this one is used up."""
        if self.state.cursor >= len(self.trainset):
            self.state.epoch += 1
            self.state.cursor = 0
        if self.state.epoch >= self.schedule.epochs:
            return None
        order = self._order(self.state.epoch)
        start = self.state.cursor
        return [self.trainset[i] for i in order[start : start + self.schedule.batch_size]]

    def _order(self, epoch: int) -> list[int]:
        order = list(range(len(self.trainset)))
        if self.schedule.shuffle:
            random.Random(f"{self.schedule.seed}:{epoch}").shuffle(order)
        return order

    async def _score(self, examples: Sequence[Example], role: Role, loss: Loss) -> list[Scored]:
        return await score_examples(
            self._target(), examples, loss, role=role, resources=self.resources,
            failure_score=self.schedule.failure_score,
        )  # fmt: skip

    # -- feedback ----------------------------------------------------------------------

    async def _gather_feedback(self, scored: list[Scored], record: StepRecord) -> None:
        """Backward through every example that ran; each parameter's feedback in batch order."""
        if self.schedule.shuffle_feedback:
            rotate_texts(scored, f"{self.schedule.seed}:shuffle:{record.step}")
        self.optimizer.zero_feedback()
        critic = getattr(self.optimizer, "critic", "critic")
        results = await backward_all(scored, critic, self.resources)
        collect(results, self._used, self.optimizer.parameters)
        for result in results:
            record.errors += result.errors
            record.unparsed += result.unparsed
        for name, param in self.optimizer.named():
            if param.feedback:
                record.feedback[name] = by_node(param.feedback)
                data = {"step": record.step, "parameter": name, "by_node": record.feedback[name]}
                self._emit(TrainingEvent.FEEDBACK, data)

    # -- the gate ----------------------------------------------------------------------

    def _note_proposals(self, proposals: list[Proposal], record: StepRecord) -> None:
        report = self.optimizer.report
        record.rejections = [
            {"parameter": r.parameter, "reason": r.reason, "detail": r.detail}
            for r in report.rejections
        ]
        record.errors += report.errors()
        for p in proposals:
            diff = text_diff(p.old, p.new)
            record.proposals.append(
                ProposalRecord(p.parameter, p.old, p.new, p.edit_ratio, p.feedback_count, diff)
            )
            self._emit(TrainingEvent.PROPOSAL, {"step": record.step, **p.to_dict(), "diff": diff})

    async def _gate(
        self, proposals: list[Proposal], scored: list[Scored], record: StepRecord
    ) -> None:
        """Apply the proposals together, score them by the metric on the gate's items, keep
        or revert."""
        items = self.valset if self.valset is not None else [s.example for s in scored]
        incumbent = self.state.best_scores
        if self.valset is None:
            incumbent = await self._batch_metric(scored, record)
        for proposal in proposals:
            self.optimizer.apply(proposal)
        try:
            found = await self._score(items, Role.VALIDATION, self.metric)
            candidate = [s.score for s in found]
        except BaseException:
            self._revert(proposals)
            raise
        seed = f"{self.schedule.seed}:{record.step}"
        decision = decide(incumbent, candidate, min_delta=self.schedule.min_delta, seed=seed)
        record.accepted, record.reason = decision.accepted, decision.reason
        record.delta, record.low, record.high = decision.delta, decision.low, decision.high
        if decision.accepted:
            self._accept(candidate, record)
        else:
            self._revert(proposals)
        self._emit(
            TrainingEvent.ACCEPTED if decision.accepted else TrainingEvent.REJECTED,
            {"step": record.step, **asdict(decision)},
        )
        validated = {"step": record.step, "score": mean(candidate), "n": len(candidate)}
        self._emit(TrainingEvent.VALIDATED, validated)

    async def _batch_metric(self, scored: list[Scored], record: StepRecord) -> list[float]:
        """The incumbent's metric scores on the batch: its loss scores when the metric is the
        loss, else the metric of the same forward passes (no forward runs again)."""
        if self.metric is self.loss:
            return record.scores
        return await rescore(scored, self.metric, self.schedule.failure_score)

    def _accept(self, candidate: list[float], record: StepRecord) -> None:
        history = self.state.history
        if self.valset is not None:
            self.state.best_scores = candidate
        history.best_values = self._values()
        history.best_score = mean(candidate)
        history.best_step = record.step

    def _revert(self, proposals: list[Proposal]) -> None:
        for proposal in reversed(proposals):
            self.optimizer.revert(proposal)

    # -- ending ------------------------------------------------------------------------

    def _end_step(self, record: StepRecord, used: int) -> None:
        state = self.state
        if not record.proposals and not record.reason:
            record.reason = "no proposal: " + _why_none(record)
        record.score = state.history.best_score
        record.parameters = self._values()
        state.history.steps.append(record)
        state.step = record.step
        state.cursor += used
        state.values = self._values()
        state.patience = 0 if record.accepted else state.patience + 1
        self._emit(TrainingEvent.BUDGET, self._usage())
        self._check_stop(record)

    def _check_stop(self, record: StepRecord) -> None:
        state, schedule = self.state, self.schedule
        never_usable = not any(step.usable for step in state.history.steps)
        state.unusable = state.unusable + 1 if never_usable else 0
        if never_usable and state.unusable >= schedule.stall_steps:
            self._finish(StopReason.STALLED, self._root_error())
        elif self._check_target():
            return
        elif schedule.patience is not None and state.patience >= schedule.patience:
            self._finish(StopReason.EARLY_STOPPED)

    def _check_target(self) -> bool:
        """Whether the incumbent's validation mean reached ``target`` (never without a
        valset: a batch's score says too little to stop on)."""
        target, best = self.schedule.target, self.state.history.best_score
        if self.valset is not None and target is not None and best is not None and best >= target:
            self._finish(StopReason.TARGET_REACHED)
            return True
        return False

    def _finish_epochs(self) -> None:
        if any(step.usable for step in self.state.history.steps):
            self._finish(StopReason.MAX_EPOCHS)
        else:
            self._finish(StopReason.STALLED, self._root_error())

    def _root_error(self) -> str:
        for step in self.state.history.steps:
            if step.errors:
                return step.errors[0]
        reasons = [step.reason for step in self.state.history.steps]
        return reasons[0] if reasons else "no training step ran"

    def _finish(self, reason: StopReason, error: str | None = None) -> None:
        history = self.state.history
        history.stop_reason, history.error = reason, error
        history.usage = self._usage()["by_role"]
        self.state.finished = True
        self.state.values = self._values()
        self._emit(
            TrainingEvent.FINISHED,
            {
                "stop_reason": reason.value,
                "error": error,
                "best_score": history.best_score,
                "best_step": history.best_step,
            },
        )

    def _calls(self) -> dict[str, int]:
        return {role.value: usage.calls for role, usage in self.meter.by_role.items()}

    def _usage(self) -> dict[str, Any]:
        by_role = {role.value: usage.to_dict() for role, usage in self.meter.by_role.items()}
        return {"by_role": by_role, "total": self.meter.total.to_dict()}

    def _emit(self, kind: TrainingEvent, data: dict[str, Any]) -> None:
        if self.on_event is not None:
            self.on_event(kind, data)


def _item(example: Example) -> list[Any]:
    return [example.id, example.input, example.expected]


def _why_none(record: StepRecord) -> str:
    if record.rejections:
        return "; ".join(f"{r['parameter']}: {r['reason']}" for r in record.rejections)
    if record.errors:
        return record.errors[0]
    if record.unparsed:
        return f"{record.unparsed} critic replies never parsed"
    return "no feedback reached a parameter"
