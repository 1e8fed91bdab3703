"""The spans of an optimization run, with tracing on (see docs/observability.md).

Under the job's one item: ``optimization`` (the run, as this runner ran it), and inside it
one ``optimization step`` per trainer step (step 0 is the baseline) and ``optimization test``
(the best values on the test split). The model calls inside are the engine's node and
attempt spans, each with ``inf.role`` (forward, critic, optimizer, judge).
"""

from __future__ import annotations

from typing import Any

from app.db.repositories.results import ItemRow
from app.engine.optimization.state import TrainerState
from app.services.optimizations.plan import OptimizationPlan
from app.services.optimizations.progress import RunRecord

RUN = "optimization"
STEP = "optimization step"
TEST = "optimization test"
Spent = dict[str, float]


def run_opening(plan: OptimizationPlan, state: TrainerState) -> dict[str, Any]:
    """The run span's first attributes: what it trains, and the step it resumes at."""
    return {
        "inf.graph.id": plan.spec.graph_id,
        "inf.graph.version": plan.version,
        "inf.optimization.resumed_at_step": state.step,
    }


def run_outcome(record: RunRecord, row: ItemRow) -> dict[str, Any]:
    """How the run ended: status, stop reason, best score and version, its usage."""
    history = record.state.history
    outcome: dict[str, Any] = {
        "inf.status": row.status,
        "inf.optimization.steps": record.state.step,
        "inf.tokens.input": row.input_tokens,
        "inf.tokens.output": row.output_tokens,
        "inf.cost": row.cost,
    }
    if history.stop_reason is not None:
        outcome["inf.optimization.stop_reason"] = history.stop_reason.value
    if history.best_score is not None:
        outcome["inf.optimization.best_score"] = history.best_score
    if isinstance(row.output, dict) and row.output.get("best_version") is not None:
        outcome["inf.optimization.best_version"] = row.output["best_version"]
    return outcome


def step_opening(state: TrainerState) -> dict[str, Any]:
    """A step span's first attributes: its number (0: the baseline) and phase."""
    if not state.started:
        return {"inf.optimization.step": 0, "inf.optimization.phase": "baseline"}
    return {"inf.optimization.step": state.step + 1, "inf.optimization.phase": "train"}


def step_outcome(state: TrainerState, before: dict[str, Spent], steps: int) -> dict[str, Any]:
    """What the step did (``steps``: the history's steps before it): its usage; for a training
    step its epoch, gate decision and the incumbent's score after it; for the baseline its
    score. The last call of a run that used its schedule up makes no call: phase ``end``."""
    outcome = _spent_since(before, state.usage)
    history = state.history
    if len(history.steps) > steps:
        record = history.steps[-1]
        outcome["inf.optimization.epoch"] = record.epoch
        outcome["inf.optimization.proposals"] = len(record.proposals)
        outcome["inf.optimization.accepted"] = record.accepted
        if record.delta is not None:
            outcome["inf.optimization.delta"] = record.delta
        if record.score is not None:
            outcome["inf.optimization.score"] = record.score
    elif not history.steps and history.baseline is not None:
        outcome["inf.optimization.score"] = history.baseline
    elif state.finished and not outcome["inf.calls"]:
        outcome["inf.optimization.phase"] = "end"  # it found the schedule used up
    if history.stop_reason is not None:
        outcome["inf.optimization.stop_reason"] = history.stop_reason.value
    return outcome


def _spent_since(before: dict[str, Spent], after: dict[str, Spent]) -> dict[str, Any]:
    def total(usage: dict[str, Spent], name: str) -> float:
        return sum(float(spent.get(name, 0)) for spent in usage.values())

    return {
        "inf.calls": int(total(after, "calls") - total(before, "calls")),
        "inf.tokens.input": int(total(after, "input_tokens") - total(before, "input_tokens")),
        "inf.tokens.output": int(total(after, "output_tokens") - total(before, "output_tokens")),
        "inf.cost": total(after, "cost") - total(before, "cost"),
    }


def tested_outcome(test: dict[str, Any] | None) -> tuple[dict[str, Any], str | None]:
    """The test span's end: the test split's mean score, or the error that stopped it."""
    if test is None:
        return {}, None
    if "error" in test:
        return {}, str(test["error"])
    return {
        "inf.optimization.test_score": test["mean"],
        "inf.optimization.failures": test["failures"],
    }, None
