"""The optimization run kind: one step (the job's one item) runs the whole training.

``open`` reads the job's :class:`~app.services.optimizations.plan.OptimizationPlan`, the graph
version it trains from and its data, and builds the engine's :class:`Trainer` (the version's
trainable parameters as :class:`Parameter` objects, the SFA optimizer, the loss it learns from,
the selection metric its gate, best version and test score by, the budget's meter) under the
runner's shared resource manager, so its calls share the process's limits and rate limiters
with jobs; or resumes it from the :class:`TrainerState` an earlier runner saved.

The step runs the trainer one trainer step at a time and, after each, stores its state, its
events and (when the step was accepted) the new graph version in one committed transaction
before the next begins (:mod:`~app.services.optimizations.progress`). Once training ended, the
best values are scored once on the test split (calls the critic and optimizer never see), on
what training left of the budget (the split's projected calls and tokens are kept from the
trainer's budget), and the result is stored. A run that stalled or failed ends its item
``failed`` with the root error.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from app.db.models import Job
from app.db.repositories import graphs as graphs_repo
from app.db.repositories import results
from app.db.repositories.results import ItemRow
from app.engine import ConfigError, EngineError, ExecutionSettings, Graph
from app.engine.graph.model import LLMNode
from app.engine.optimization.budget import Budget, Meter, Usage
from app.engine.optimization.calls import dearest_price, metering
from app.engine.optimization.evaluate import evaluate
from app.engine.optimization.history import StopReason
from app.engine.optimization.optimizer import graph_parameters
from app.engine.optimization.sfa import SFAOptimizer
from app.engine.optimization.state import TrainerState
from app.engine.optimization.trainer import Schedule, Trainer
from app.engine.resources.manager import ResourceManager
from app.lifecycle import EventKind, ItemStatus
from app.services.ledger.options import LedgerOptions
from app.services.observability.tracing import engine_spans, section_scope
from app.services.optimization.call_sizes import mean_input_chars
from app.services.optimization.checks import Sizes
from app.services.optimization.losses import loss_of
from app.services.optimization.projection import project
from app.services.optimization.spec import OptimizationSpec
from app.services.optimizations import progress, spans
from app.services.optimizations.plan import OPTIMIZATION, OptimizationPlan, RunData, run_data
from app.services.optimizations.progress import RUN_ITEM, Event, RunRecord
from app.services.optimizations.versions import add_accepted
from app.services.runner.kinds import CannotRun, KindRun, RunDeps, Step

FAILED_STOPS = frozenset({StopReason.STALLED, StopReason.ERROR})


class OptimizationKind:
    """A graph version's parameters trained on stored data (``jobs.kind = "optimization"``)."""

    name = OPTIMIZATION

    async def open(self, job: Job, deps: RunDeps) -> KindRun:
        if job.spec is None:
            raise CannotRun("the optimization has no stored spec")
        plan = OptimizationPlan.from_json(job.spec)
        async with deps.sessions() as session:
            version = await graphs_repo.get_version_by_id(session, plan.version_id)
            data = await run_data(session, plan.spec)
            stored = progress.stored_record(await results.item_nodes(session, job.id, RUN_ITEM))
        if version is None:
            raise CannotRun(f"graph version {plan.version_id!r} is gone")
        graph = Graph.model_validate(version.definition)
        try:
            run = OptimizationRun(job.id, plan, graph, data, deps, stored)
        except EngineError as exc:
            raise CannotRun(f"{type(exc).__name__}: {exc}") from None
        run.ledger = _ledger(plan.spec, job, deps)
        return run


class OptimizationRun:
    """One optimization run, started or resumed."""

    def __init__(
        self, job_id: str, plan: OptimizationPlan, graph: Graph, data: RunData, deps: RunDeps,
        stored: RunRecord | None,
    ) -> None:  # fmt: skip
        self.job_id, self.plan, self.graph, self.data, self.deps = job_id, plan, graph, data, deps
        self.events: list[Event] = []
        state = None if stored is None else stored.state
        self.trainer = _trainer(plan.spec, graph, data, deps, self._on_event, state)
        self.record = stored or RunRecord(self.trainer.state, plan.version)
        self.started = {"graph_version": plan.version, "resumed_at_step": self.record.state.step}
        self.ledger = ExecutionSettings()  # its calls' response ledger: a context for them all

    def _on_event(self, kind: str, data: dict[str, Any]) -> None:
        self.events.append((EventKind(kind).value, data))

    async def step(self, step: Step) -> ItemRow:
        step.begin()
        opening = spans.run_opening(self.plan, self.record.state)
        with self.ledger, section_scope(self.deps.tracing, spans.RUN, opening) as scope:
            row = await self._run()
            scope.ended(spans.run_outcome(self.record, row), row.error)
            return row

    async def _run(self) -> ItemRow:
        while not self.trainer.done:
            before = _calls(self.record.state.usage)
            await self._trainer_step()
            self._count(before)
        if not self.record.tested:
            await self._test()
        return self._row()

    async def _trainer_step(self) -> None:
        """One trainer step and its save, in a span of its own."""
        state = self.record.state
        usage = {role: dict(spent) for role, spent in state.usage.items()}
        steps = len(state.history.steps)
        with section_scope(self.deps.tracing, spans.STEP, spans.step_opening(state)) as scope:
            await self.trainer.step()
            await self._save()
            scope.ended(spans.step_outcome(self.record.state, usage, steps))

    def _count(self, before: dict[str, int]) -> None:
        """The calls of the step just stored, on ``inf_optimization_calls`` by role."""
        for role, calls in _calls(self.record.state.usage).items():
            if calls > before.get(role, 0):
                self.deps.metrics.optimization_calls.labels(role).inc(calls - before.get(role, 0))

    async def _save(self) -> None:
        """The step's state and events, and the version of an accepted step, committed."""
        events, self.events = self.events, []
        steps = self.record.state.history.steps
        last = steps[-1] if steps else None
        if last is None or not last.accepted or last.step in self.record.versions:
            await progress.save(self.deps.sessions, self.job_id, self.record, events)
            return
        async with self.deps.sessions() as session:
            number = await add_accepted(
                session, self.plan.graph_id, self.graph, self.job_id, self.record, last
            )
            events.append((EventKind.VERSION_CREATED.value, {"step": last.step, "version": number}))
            await progress.save(self.deps.sessions, self.job_id, self.record, events, session)

    async def _test(self) -> None:
        """The best values scored once on the test split, within what training left of the
        budget (its calls were kept for it before training began; the wall cap is not
        applied)."""
        if self.data.test:
            opening = {"inf.optimization.examples": len(self.data.test)}
            with section_scope(self.deps.tracing, spans.TEST, opening) as scope:
                await self._score_test()
                scope.ended(*spans.tested_outcome(self.record.test))
        self.record.tested = True
        tested = [(EventKind.TESTED.value, {"test": self.record.test})]
        await progress.save(self.deps.sessions, self.job_id, self.record, tested)

    async def _score_test(self) -> None:
        left = self.plan.spec.budget.to_budget().less(self.record.state.spent())
        meter = Meter(replace(left, max_wall_s=None))
        best = self.graph.with_parameters(self.record.state.history.best_values)
        with metering(meter):
            try:
                found = await evaluate(
                    best, self.data.test, self.trainer.metric, resources=self.deps.resources,
                    seed=self.plan.spec.seed,
                )  # fmt: skip
                self.record.test = {**found.to_dict(), "scores": None}
            except EngineError as exc:
                self.record.test = {"error": f"{type(exc).__name__}: {exc}"}
        self.record.test_usage = {r.value: u.to_dict() for r, u in meter.by_role.items()}

    def _row(self) -> ItemRow:
        history = self.record.state.history
        failed = history.stop_reason in FAILED_STOPS
        status = ItemStatus.FAILED if failed else ItemStatus.SUCCEEDED
        output = {
            "stop_reason": None if history.stop_reason is None else history.stop_reason.value,
            "best_score": history.best_score,
            "best_version": self.record.versions.get(history.best_step or 0, self.plan.version),
            "test": self.record.test,
        }
        error = history.error if failed else None
        return ItemRow(self.job_id, RUN_ITEM, status.value, output, error, *self._usage())

    def _usage(self) -> tuple[int, int, float]:
        spent = [*self.record.state.usage.values(), *self.record.test_usage.values()]
        tokens_in = sum(int(u.get("input_tokens", 0)) for u in spent)
        tokens_out = sum(int(u.get("output_tokens", 0)) for u in spent)
        return tokens_in, tokens_out, float(sum(u.get("cost", 0.0) for u in spent))


def _ledger(spec: OptimizationSpec, job: Job, deps: RunDeps) -> ExecutionSettings:
    """The settings every call of the run takes from its context: the tenant's ledger, and
    the span hooks when this process traces."""
    options = LedgerOptions(spec.cache, spec.replay)
    settings = options.settings(deps.sessions, job.tenant_id, deps.ledger_cache)
    return ExecutionSettings(spans=engine_spans(deps.tracing), **settings)


def _calls(usage: dict[str, dict[str, float]]) -> dict[str, int]:
    return {role: int(spent.get("calls", 0)) for role, spent in usage.items()}


def _trainer(
    spec: OptimizationSpec, graph: Graph, data: RunData, deps: RunDeps,
    on_event: Any, state: TrainerState | None,
) -> Trainer:  # fmt: skip
    """The run's trainer, fresh or resumed from ``state`` (``ConfigError`` if the
    version's parameters or aliases no longer fit the spec)."""
    for alias in (spec.optimizer.critic, spec.optimizer.optimizer):
        deps.resources.config.endpoint(alias)  # ConfigError if no longer configured
    params = graph_parameters(graph)
    chosen = spec.parameters if spec.parameters is not None else list(params)
    missing = [name for name in chosen if name not in params]
    if missing:
        raise ConfigError(f"the graph version has no trainable parameter {missing[0]!r}")
    optimizer = SFAOptimizer(
        {name: params[name] for name in chosen}, optimizer=spec.optimizer.optimizer,
        critic=spec.optimizer.critic, conservatism=spec.optimizer.conservatism,
        max_edit_ratio=spec.optimizer.max_edit_ratio,
    )  # fmt: skip
    schedule = Schedule(
        epochs=spec.schedule.epochs, batch_size=spec.schedule.batch_size, seed=spec.seed,
        min_delta=spec.min_delta, patience=spec.patience, target=spec.target,
    )  # fmt: skip
    loss = loss_of(spec.loss, deps.resources)
    metric = loss if spec.selection_metric is None else loss_of(spec.metric, deps.resources)
    return Trainer(
        graph, data.train, loss, optimizer, valset=data.val, schedule=schedule,
        budget=_training_budget(spec, graph, data, deps.resources), resources=deps.resources,
        on_event=on_event, state=state, metric=metric,
    )  # fmt: skip


def _training_budget(
    spec: OptimizationSpec, graph: Graph, data: RunData, resources: ResourceManager
) -> Budget:
    """The spec's budget less the test split's projected calls and tokens (and their cost at
    the dearest price of the aliases it calls), so training leaves the test what it needs."""
    sizes = Sizes(len(data.train), len(data.val), len(data.test))
    chars = mean_input_chars(example.input for example in data.train)
    test = project(spec, graph, sizes, chars).test
    aliases = [node.alias for node in graph.nodes if isinstance(node, LLMNode)]
    aliases += [] if spec.metric.judge is None else [spec.metric.judge.alias]
    price = max((dearest_price(resources, alias) for alias in aliases), default=0.0) / 1e6
    kept = {
        role: Usage(c.calls, c.input_tokens, c.output_tokens, c.tokens * price)
        for role, c in test.items()
    }
    return spec.budget.to_budget().less(kept)
