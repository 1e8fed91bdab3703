"""The live projection: spent plus the steps left at the finished steps' mean calls per step
(validation at the proposal rate observed), plus the baseline and test not yet run; exactly
what was spent once the run ended."""

from __future__ import annotations

from app.engine import Graph
from app.engine.optimization.history import ProposalRecord, StepRecord
from app.engine.optimization.roles import Role
from app.engine.optimization.state import TrainerState
from app.services.optimization.checks import Sizes
from app.services.optimization.issues import parse
from app.services.optimization.live import Outlook, live_projection
from app.services.optimization.projection import Projection, project
from app.services.optimization.spec import OptimizationSpec

# Two llm nodes and one parameter: per training item 2 task and 2 critic calls; per step 1
# optimizer call and, when it proposes, 4 val items x 2 = 8 validation calls.
LINEAR = Graph.model_validate(
    {
        "name": "linear",
        "inputs": {"q": {}},
        "parameters": {"p": {"value": "Be brief."}},
        "nodes": [
            {"id": "a", "op": "llm", "alias": "m", "system": "{p}", "prompt": "Q: {q}"},
            {"id": "b", "op": "llm", "alias": "m", "prompt": "Check: {a}"},
        ],
        "outputs": {"y": "b"},
    }
)
SPEC = parse(OptimizationSpec, {
    "graph_id": "g", "train": "t", "val": "v", "test": "s",
    "loss": {"verifiers": [{"op": "exact"}]}, "schedule": {"epochs": 2, "batch_size": 5},
    "budget": {"max_calls": 10**6},
})  # fmt: skip
SIZES = Sizes(train=10, val=4, test=6)
VAL_CALLS, TEST_CALLS = 8, 12
PROPOSAL = ProposalRecord("p", "old", "new", 0.5, 5, "-old\n+new")


def projection(train: int = 10) -> Projection:
    return project(SPEC, LINEAR, Sizes(train, SIZES.val, SIZES.test))


def a_step(number: int, proposes: bool, items: int = 5, critics: int = 6) -> StepRecord:
    calls = {"task": 2 * items, "judge": 0, "backward": critics, "optimizer": 1,
             "validation": VAL_CALLS if proposes else 0}  # fmt: skip
    proposals = [PROPOSAL] if proposes else []
    examples: list[int | str] = list(range(items))
    return StepRecord(0, number, examples, [0.0] * items, proposals=proposals, calls=calls)


def state_after(steps: list[StepRecord], finished: bool = False) -> TrainerState:
    """A state whose usage is the baseline's validation and every step's calls."""
    usage = {role.value: {"calls": float(sum(s.calls[role] for s in steps))} for role in Role}
    usage["validation"]["calls"] += VAL_CALLS
    state = TrainerState(step=len(steps), started=True, finished=finished, usage=usage)
    state.history.steps.extend(steps)
    return state


def test_the_steps_left_count_at_the_mean_per_step_and_the_proposal_rate_observed() -> None:
    k, n, scheduled = 1, 3, 4  # k of the n finished steps proposed
    steps = [a_step(1, True), a_step(2, False), a_step(3, False)]
    live = live_projection(projection(), state_after(steps))
    left = scheduled - n
    spent = {role: live.by_role[role].spent for role in live.by_role}
    mean = {role.value: sum(s.calls[role] for s in steps) / n for role in Role}
    assert live.by_role["validation"] == Outlook(
        spent["validation"], spent["validation"] + round(left * k / n * VAL_CALLS) + TEST_CALLS,
        spent["validation"] + left * VAL_CALLS + TEST_CALLS,
    )  # fmt: skip
    for role in ("task", "backward", "optimizer"):
        assert live.by_role[role].projected_total == spent[role] + left * mean[role]
    assert live.by_role["backward"].upper_bound == spent["backward"] + left * 5 * 2
    assert live.calls.projected_total == sum(o.projected_total for o in live.by_role.values())
    assert (live.steps.finished, live.steps.left, live.steps.proposed) == (n, left, k)


def test_at_the_end_the_projected_total_is_exactly_what_was_spent() -> None:
    steps = [a_step(1, True), a_step(2, False), a_step(3, True), a_step(4, False)]
    state = state_after(steps, finished=True)
    tested = {"validation": {"calls": float(TEST_CALLS)}, "judge": {"calls": 0.0}}
    live = live_projection(projection(), state, tested)
    assert live.calls.spent == sum(int(u["calls"]) for u in state.usage.values()) + TEST_CALLS
    for outlook in [live.calls, *live.by_role.values()]:
        assert outlook.projected_total == outlook.upper_bound == outlook.spent
    assert live.steps.left == 0


def test_a_finished_run_not_yet_tested_still_projects_the_test() -> None:
    state = state_after([a_step(1, True)], finished=True)  # stopped early, e.g. on its target
    live = live_projection(projection(), state)
    validation = live.by_role["validation"]
    assert validation.projected_total == validation.upper_bound == validation.spent + TEST_CALLS
    assert live.by_role["task"].projected_total == live.by_role["task"].spent


def test_before_the_first_step_the_projection_is_the_dry_runs() -> None:
    dry = projection()
    for state in (TrainerState(), state_after([])):
        live = live_projection(dry, state)
        baseline_spent = 0 if not state.started else VAL_CALLS
        assert live.calls.projected_total == live.calls.upper_bound == dry.total.calls
        assert live.calls.spent == baseline_spent


def test_a_short_last_batch_keeps_the_task_calls_exact() -> None:
    # 7 items in batches of 5: steps of 5, 2, 5, 2 items; after the first, 9 items are left
    live = live_projection(projection(train=7), state_after([a_step(1, True)]))
    assert live.by_role["task"].projected_total == 2 * 7 * 2
    assert live.steps.left == 3


def test_a_run_whose_job_ended_projects_nothing_more() -> None:
    live = live_projection(projection(), state_after([a_step(1, True)]), ended=True)
    for outlook in [live.calls, *live.by_role.values()]:
        assert outlook.projected_total == outlook.upper_bound == outlook.spent


def test_steps_saved_without_call_counts_leave_the_rest_at_the_bound() -> None:
    old = a_step(1, False)
    old.calls = {}
    state = state_after([a_step(1, False)])
    state.history.steps[:] = [old]
    live = live_projection(projection(), state)
    validation = live.by_role["validation"]
    assert validation.projected_total == validation.upper_bound
