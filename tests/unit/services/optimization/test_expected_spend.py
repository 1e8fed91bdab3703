"""The expected spend's formula: per role, the upper bound times the median fraction of
their own bound the last (at most five) earlier runs spent."""

from __future__ import annotations

from app.engine.optimization.roles import Role
from app.services.optimization.expected import Basis, PastRun, expected, settings_key
from app.services.optimization.projection import Cost, Projection
from app.services.optimization.spec import OptimizationSpec


def bound(task: int, validation: int) -> Projection:
    roles = {Role.TASK: Cost(task, task * 10, 0), Role.JUDGE: Cost(),
             Role.VALIDATION: Cost(validation, validation * 10, 0)}  # fmt: skip
    return Projection(4, roles)


def past(projection: Projection, task: int, validation: int, cost: float = 0.0) -> PastRun:
    spent = {"task": {"calls": task, "input_tokens": task * 10, "cost": cost},
             "validation": {"calls": validation, "input_tokens": validation * 5}}  # fmt: skip
    return PastRun(projection, spent)


def test_each_role_takes_the_median_ratio_of_the_earlier_runs() -> None:
    earlier = bound(10, 100)
    runs = [past(earlier, 10, 20), past(earlier, 10, 50), past(earlier, 10, 30)]

    found = expected(bound(20, 300), runs)

    assert (found.basis, found.runs) == (Basis.HISTORY, 3)
    assert found.roles[Role.TASK].calls == 20
    assert found.roles[Role.VALIDATION].calls == 90  # 300 x median(0.2, 0.5, 0.3)
    assert found.roles[Role.VALIDATION].tokens == 450  # 3,000 x median(0.1, 0.25, 0.15)
    assert found.total.calls == 110
    assert found.roles[Role.JUDGE].calls == 0


def test_only_the_newest_five_runs_count() -> None:
    earlier = bound(10, 100)
    runs = [past(earlier, 10, 10)] * 5 + [past(earlier, 10, 100)] * 4

    found = expected(bound(10, 100), runs)

    assert (found.runs, found.roles[Role.VALIDATION].calls) == (5, 10)


def test_cost_is_the_earlier_cost_per_bound_call_and_unknown_without_history() -> None:
    earlier = bound(10, 100)
    found = expected(bound(30, 100), [past(earlier, 10, 20, cost=0.5), past(earlier, 10, 20, 1.5)])

    assert found.roles[Role.TASK].cost == 30 * (1.0 / 10)
    assert found.total.cost == found.roles[Role.TASK].cost  # validation cost nothing
    assert expected(bound(30, 100), []).total.cost is None


def test_a_role_no_earlier_run_bounded_keeps_its_bound() -> None:
    earlier = Projection(4, {Role.TASK: Cost(10, 100, 0)})
    found = expected(bound(20, 300), [past(earlier, 10, 0)])

    assert found.roles[Role.VALIDATION].calls == 300
    assert found.roles[Role.VALIDATION].cost is None
    assert found.total.cost is None


def spec(**overrides: object) -> OptimizationSpec:
    body = {"graph_id": "g", "train": "t", "val": "v", "loss": {"verifiers": [{"op": "exact"}]},
            "budget": {"max_calls": 900}, **overrides}  # fmt: skip
    return OptimizationSpec.model_validate(body)


def test_seed_schedule_budget_and_data_do_not_change_the_settings_but_the_optimizer_does() -> None:
    base = settings_key(spec())
    assert base == settings_key(
        spec(seed=7, schedule={"epochs": 9}, budget={"max_calls": 5}, train="x", version=3)
    )
    assert base != settings_key(spec(optimizer={"conservatism": 0.1}))
    assert base != settings_key(spec(selection_metric={"verifiers": [{"op": "answer_equals"}]}))
    assert settings_key(spec(parameters=["a", "b"])) == settings_key(spec(parameters=["b", "a"]))
