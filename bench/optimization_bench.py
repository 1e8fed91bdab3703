"""Optimization benchmark: the efficiency of an optimization step's evaluation, and the
dry-run projection of calls against the calls a run makes.

1. Efficiency. Task B's graph (three ``llm`` calls per item, two on the critical path) runs
   over the same ``N`` items on one simulated endpoint with a fixed latency ``L`` and
   ``max_concurrent`` ``C``, three ways, each on its own resource manager:

   - ``batch``: a plain job, ``run_batch`` of the graph over the items;
   - ``evaluate``: the engine's ``evaluate`` (recorded forward + verifier loss per item);
   - ``validation``: a ``Trainer``'s baseline step (the validation every gated proposal runs),
     metered like a run.

   Ideal bound: ``max(ceil(3N / C), 2) x L`` (every call holds a slot for ``L``). Reported as
   ratios only (to the batch job and to the bound), never as pass/fail on seconds.
2. Projection. Tasks A and B train on the offline simulator with the schedule a spec names
   (3 epochs, batch 5, train/val splits, a final test evaluation under ``validation``), and
   the spec's ``project()`` is set beside the calls the meter counted, per role and in total.
   Call counts are deterministic (same seed, same counts) and printed exactly. The projection
   also gets the run's observed proposal steps and optimizer calls back (``given counts``):
   it then matches exactly, showing the gap is only in how often a step proposes. Last, the
   live projection a run's status shows (``live_projection``: spent, plus the steps left at
   the finished steps' calls per step, plus the test) after the baseline and after 25, 50 and
   75 % of the steps, as a ratio to the calls the run made in the end.
3. Expected calls. Each task is trained a second time with another seed (other batches); the
   second run's dry-run ``expected`` (``app.services.optimization.expected``: the upper bound
   scaled per role by what the first run spent of its own bound) is set beside the calls the
   second run made; then the first run learnt from the second, and a run of 2 epochs (another
   upper bound) learnt from the first.

    make bench-optimization
    .venv/bin/python -m bench.optimization_bench --projection-only
    .venv/bin/python -m bench.optimization_bench --items 400 --concurrency 32 --latency-ms 30
    .venv/bin/python -m bench.optimization_bench --items 2000 --concurrency 128 --repeats 1
    .venv/bin/python -m bench.optimization_bench --items 2000 --concurrency 128 --calls

``--calls`` adds, per way, the Python function calls per item (``cProfile`` over one run):
a figure of the per-item work that the host's load does not move, unlike wall time.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import math
import pstats
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.engine import Graph, ResourceConfig, run_batch
from app.engine.optimization import (
    Example,
    Meter,
    Role,
    SFAOptimizer,
    Trainer,
    TrainingHistory,
    evaluate,
    graph_parameters,
    metering,
)
from app.engine.optimization.state import TrainerState
from app.engine.optimization.trainer import Schedule
from app.engine.resources.manager import ResourceManager
from app.services.optimization.checks import Sizes
from app.services.optimization.expected import PastRun, expected
from app.services.optimization.live import live_projection
from app.services.optimization.projection import Projection, project
from app.services.optimization.spec import OptimizationSpec
from examples.optimization.tasks import answer_loss, examples_of, graph_of, sim_resources, splits_of

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
EPOCHS, BATCH, SEED = 3, 5, 0
SECOND_SEED = 1  # the second run of each task, whose dry run learns from the first
SHORTER = 2  # epochs of a run whose upper bound differs from the run it learns from
TOLERANCE = 0.10
CHECKPOINTS = (0.0, 0.25, 0.5, 0.75)  # fractions of the scheduled steps; 0: after the baseline


# -- data ----------------------------------------------------------------------------------


def cycled(items: list[Example], n: int) -> list[Example]:
    """``n`` examples cycling through ``items``, each with its own id."""
    return [
        Example(items[i % len(items)].input, items[i % len(items)].expected, i) for i in range(n)
    ]


# -- 1. efficiency ---------------------------------------------------------------------------


async def _batch(graph: Graph, items: list[Example], manager: ResourceManager) -> int:
    results = await run_batch(graph, [e.input for e in items], resources=manager)
    return sum(r.error is not None for r in results)


async def _evaluate(graph: Graph, items: list[Example], manager: ResourceManager) -> int:
    return (await evaluate(graph, items, answer_loss(), resources=manager)).failures


async def _validation(graph: Graph, items: list[Example], manager: ResourceManager) -> int:
    optimizer = SFAOptimizer(graph_parameters(graph))
    trainer = Trainer(
        graph, items[:BATCH], answer_loss(), optimizer, valset=items, resources=manager
    )
    await trainer.step()  # the baseline: every validation item through the graph, metered
    assert trainer.meter.by_role[Role.VALIDATION].calls == 3 * len(items)
    return 0


Way = Callable[[Graph, list[Example], ResourceManager], Awaitable[int]]
WAYS: dict[str, Way] = {"batch": _batch, "evaluate": _evaluate, "validation": _validation}


def timed(way: Way, graph: Graph, items: list[Example], config: ResourceConfig) -> float:
    async def once() -> float:
        async with ResourceManager(config) as manager:
            started = time.perf_counter()
            failures = await way(graph, items, manager)
            wall = time.perf_counter() - started
        assert failures == 0, f"{failures} items failed"
        return wall

    return asyncio.run(once())


def calls_per_item(way: Way, graph: Graph, items: list[Example], config: ResourceConfig) -> float:
    """Python function calls per item of one run of ``way`` (the run itself, not its set-up)."""
    profile = cProfile.Profile()

    async def once() -> None:
        async with ResourceManager(config) as manager:
            profile.enable()
            await way(graph, items, manager)
            profile.disable()

    asyncio.run(once())
    return pstats.Stats(profile).total_calls / len(items)


def efficiency(
    items: int, concurrency: int, latency_s: float, repeats: int, calls: bool = False
) -> dict[str, Any]:
    graph = graph_of("task-b")
    data = cycled(examples_of("task-b"), items)
    config = sim_resources(latency_s=latency_s, concurrency=concurrency)
    ideal = max(math.ceil(3 * items / concurrency), 2) * latency_s
    walls = {
        name: min(timed(way, graph, data, config) for _ in range(repeats))
        for name, way in WAYS.items()
    }
    print(
        f"\n1. efficiency: Task B graph, {items:,} items x 3 calls, latency "
        f"{latency_s * 1000:.0f} ms, max_concurrent {concurrency}, ideal bound {ideal:.2f} s "
        f"(best of {repeats})"
    )
    print(f"{'run':<11} {'wall s':>7} {'vs batch':>9} {'ideal/wall':>11}")
    for name, wall in walls.items():
        print(f"{name:<11} {wall:>7.2f} {wall / walls['batch']:>9.3f} {ideal / wall:>11.3f}")
    result = {
        "items": items, "concurrency": concurrency, "latency_s": latency_s, "ideal_s": ideal,
        "wall_s": walls, "vs_batch": {n: w / walls["batch"] for n, w in walls.items()},
        "efficiency": {n: ideal / w for n, w in walls.items()},
    }  # fmt: skip
    if calls:
        per_item = {name: calls_per_item(way, graph, data, config) for name, way in WAYS.items()}
        print("Python calls per item: " + ", ".join(f"{n} {c:,.0f}" for n, c in per_item.items()))
        result["calls_per_item"] = per_item
    return result


# -- 2. projection ---------------------------------------------------------------------------


def spec_for(epochs: int = EPOCHS) -> OptimizationSpec:
    return OptimizationSpec.model_validate({
        "graph_id": "g", "train": "t", "val": "v", "test": "s",
        "loss": {"verifiers": [{"op": "answer_equals"}]}, "budget": {"max_calls": 10**6},
        "schedule": {"epochs": epochs, "batch_size": BATCH},
    })  # fmt: skip


@dataclass(frozen=True, slots=True)
class Run:
    """A run's calls per role (the test's included), its history, its state at each
    checkpoint and at the end, and the test's usage."""

    calls: dict[str, int]
    history: TrainingHistory
    states: dict[float, TrainerState]
    final: TrainerState
    tested: dict[str, dict[str, float]]


async def actual_calls(task: str, steps: int, seed: int = SEED, epochs: int = EPOCHS) -> Run:
    """Train ``task`` as the spec schedules it (its ``steps`` steps, batches shuffled by
    ``seed``), keeping the state at each checkpoint, then the test evaluation."""
    graph, splits, config = graph_of(task), splits_of(task), sim_resources()
    params = graph_parameters(graph)
    trainer = Trainer(
        graph, splits["train"], answer_loss(), SFAOptimizer(params), valset=splits["val"],
        schedule=Schedule(epochs=epochs, batch_size=BATCH, seed=seed), resources=config,
    )  # fmt: skip
    states: dict[float, TrainerState] = {}
    while not trainer.done:
        await trainer.step()
        for fraction in CHECKPOINTS:
            if fraction not in states and len(trainer.history.steps) >= fraction * steps:
                states[fraction] = TrainerState.from_json(trainer.state.to_json())
    meter = Meter()
    with metering(meter):
        tuned = graph.with_parameters({name: p.value for name, p in params.items()})
        await evaluate(tuned, splits["test"], answer_loss(), resources=config)
    history = trainer.history
    calls = {role: int(history.usage.get(role.value, {}).get("calls", 0)) for role in Role}
    calls[Role.VALIDATION] += meter.by_role[Role.VALIDATION].calls
    tested = {role.value: usage.to_dict() for role, usage in meter.by_role.items()}
    return Run({r.value: n for r, n in calls.items()}, history, states, trainer.state, tested)


def projected_calls(task: str, epochs: int = EPOCHS) -> Projection:
    graph, splits = graph_of(task), splits_of(task)
    sizes = Sizes(len(splits["train"]), len(splits["val"]), len(splits["test"]))
    return project(spec_for(epochs), graph, sizes)


def given_counts(task: str, projection: Projection, history: TrainingHistory) -> dict[str, int]:
    """The projection's unit costs times what the run did: the optimizer calls it made and
    the validations of its proposal steps (plus baseline and test), instead of every step."""
    splits, nodes = splits_of(task), 3 if task == "task-b" else 1
    proposing = sum(1 for step in history.steps if step.proposals)
    optimizer = sum(len(step.feedback) for step in history.steps)
    val = (len(splits["val"]) * (proposing + 1) + len(splits["test"])) * nodes
    counts = {role.value: cost.calls for role, cost in projection.roles.items()}
    return {**counts, "optimizer": optimizer, "validation": val}


def within(projected: int, actual: int) -> bool:
    return abs(projected - actual) <= TOLERANCE * max(actual, 1)


def projection_report(task: str) -> dict[str, Any]:
    projection = projected_calls(task)
    run = asyncio.run(actual_calls(task, projection.steps))
    actual, history = run.calls, run.history
    projected = {role.value: cost.calls for role, cost in projection.roles.items()}
    given = given_counts(task, projection, history)
    rows = [*actual, "total"]
    actual["total"], projected["total"] = sum(actual.values()), sum(projected.values())
    given["total"] = sum(given.values())
    proposing = sum(1 for step in history.steps if step.proposals)
    print(
        f"\n2. projection: {task}, {EPOCHS} epochs x batch {BATCH}, {len(history.steps)} steps, "
        f"{proposing} with proposals, stop {history.stop_reason}"
    )
    print(
        f"{'role':<11} {'projected':>9} {'actual':>7} {'ratio':>6} {'10%':>5} {'given counts':>13}"
    )
    for row in rows:
        ratio = projected[row] / actual[row] if actual[row] else float("nan")
        verdict = "PASS" if within(projected[row], actual[row]) else "FAIL"
        counts = f"{projected[row]:>9,} {actual[row]:>7,} {ratio:>6.2f}"
        print(f"{row:<11} {counts} {verdict:>5} {given[row]:>13,}")
    return {
        "task": task, "steps": len(history.steps), "proposal_steps": proposing,
        "projected": projected, "actual": actual, "given_counts": given,
        "within_10pct": within(projected["total"], actual["total"]),
        "live": live_report(projection, run, actual["total"]),
        "expected": expected_report(task, projection, run),
    }  # fmt: skip


def spent_of(run: Run) -> dict[str, dict[str, float]]:
    """Per role, what ``run`` spent in training and in its test (as a stored run records)."""
    spent = {role: dict(usage) for role, usage in run.history.usage.items()}
    for role, usage in run.tested.items():
        total = spent.setdefault(role, {})
        for name, value in usage.items():
            total[name] = total.get(name, 0) + value
    return spent


def expected_report(task: str, projection: Projection, first: Run) -> dict[str, Any]:
    """A second run with another seed: its dry run's expected calls, learnt from the first
    run, against the calls the second run made; then the other way round, and a shorter
    schedule (another upper bound) learnt from the first run."""
    second = asyncio.run(actual_calls(task, projection.steps, SECOND_SEED))
    print(f"expected calls (seed {SECOND_SEED} run's dry run, learnt from the seed {SEED} run):")
    print(f"{'role':<11} {'bound':>7} {'expected':>8} {'actual':>7} {'ratio':>6} {'10%':>5}")
    report = _expected_rows(projection, first, second)
    back = PastRun(projection, spent_of(second))
    report["reverse"] = _other(f"seed {SEED} from seed {SECOND_SEED}", projection, back, first)
    shorter = projected_calls(task, SHORTER)
    made = asyncio.run(actual_calls(task, shorter.steps, SECOND_SEED, SHORTER))
    past = PastRun(projection, spent_of(first))
    report["shorter"] = _other(f"{SHORTER} epochs, seed {SECOND_SEED}", shorter, past, made)
    return report


def _other(name: str, projection: Projection, past: PastRun, run: Run) -> dict[str, Any]:
    """The expected total calls of ``run`` (bound ``projection``) learnt from ``past``."""
    found, made = expected(projection, [past]).total.calls, made_calls(run)
    print(f"{name}: expected {found:,} vs {made:,} made, {found / made:.3f}")
    return {"upper_bound": projection.total.calls, "expected": found, "actual": made,
            "ratio": found / made, "within_10pct": within(found, made)}  # fmt: skip


def made_calls(run: Run) -> int:
    return sum(run.calls[role.value] for role in Role)


def _expected_rows(projection: Projection, first: Run, second: Run) -> dict[str, Any]:
    found = expected(projection, [PastRun(projection, spent_of(first))])
    rows: dict[str, Any] = {}
    for role, spend in found.roles.items():
        rows[role.value] = _row(role.value, projection.roles[role].calls, spend.calls,
                                second.calls[role.value])  # fmt: skip
    made = made_calls(second)
    rows["total"] = _row("total", projection.total.calls, found.total.calls, made)
    return {"seeds": [SEED, SECOND_SEED], "roles": rows, "within_10pct": within(
        found.total.calls, made), "ratio": found.total.calls / made}  # fmt: skip


def _row(name: str, bound: int, projected: int, actual: int) -> dict[str, Any]:
    ratio = projected / actual if actual else float("nan")
    verdict = "PASS" if within(projected, actual) else "FAIL"
    print(f"{name:<11} {bound:>7,} {projected:>8,} {actual:>7,} {ratio:>6.3f} {verdict:>5}")
    return {"upper_bound": bound, "expected": projected, "actual": actual, "ratio": ratio}


def live_report(projection: Projection, run: Run, made: int) -> dict[str, Any]:
    """The live projection's total and bound after the baseline, at each checkpoint and at the
    end, each as a ratio to the calls the run made."""
    found = [
        ("baseline" if not fraction else f"{fraction:.0%}", state, None)
        for fraction, state in run.states.items()
    ]
    found.append(("end", run.final, run.tested))
    print(f"live projection / calls made ({made:,}):")
    print(f"{'after':<9} {'steps':>5} {'projected':>9} {'ratio':>6} {'bound':>6} {'ratio':>6}")
    report: dict[str, Any] = {}
    for name, state, tested in found:
        calls = live_projection(projection, state, tested).calls
        ratio, bound = calls.projected_total / made, calls.upper_bound / made
        print(
            f"{name:<9} {len(state.history.steps):>5} {calls.projected_total:>9,} {ratio:>6.2f} "
            f"{calls.upper_bound:>6,} {bound:>6.2f}"
        )
        report[name] = {
            "steps": len(state.history.steps), "projected_total": calls.projected_total,
            "upper_bound": calls.upper_bound, "ratio": ratio,
        }  # fmt: skip
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, action="append", help="repeat for several runs")
    parser.add_argument("--concurrency", type=int, action="append", help="one per --items")
    parser.add_argument("--latency-ms", type=float, default=30.0)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per way (best kept)")
    parser.add_argument("--calls", action="store_true", help="also Python calls per item")
    parser.add_argument(
        "--projection-only", action="store_true", help="skip the efficiency runs (part 1)"
    )
    args = parser.parse_args(argv)
    runs = zip(args.items or [400, 2_000], args.concurrency or [32, 128], strict=True)
    latency_s = args.latency_ms / 1000
    results = {
        "efficiency": []
        if args.projection_only
        else [efficiency(n, c, latency_s, args.repeats, args.calls) for n, c in runs],
        "projection": [projection_report(task) for task in ("task-a", "task-b")],
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "optimization_bench.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
