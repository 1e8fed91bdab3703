"""What a well-formed spec names, checked against what exists: the graph's parameters and
outputs, the tenant's datasets (with their item counts) and the configured endpoint aliases.

Plain data in, a list of :class:`Issue` out (empty when the spec can run), each naming its
field: ``parameters[1]``, ``train``, ``split.val``, ``optimizer.critic``,
``loss.verifiers[0].output``. Raise them with :func:`~app.services.optimization.issues.invalid`.

>>> from app.engine import Graph
>>> graph = Graph.model_validate({"name": "g", "inputs": {"q": {}}, "nodes": [],
...     "outputs": {"a": "q"}})
>>> spec = OptimizationSpec.model_validate({"graph_id": "g", "train": "d1", "val": "d9",
...     "loss": {"verifiers": [{"op": "exact"}]}, "budget": {"max_calls": 9}})
>>> [issue.field for issue in optimization_issues(spec, graph, {"d1": 5}, {"critic"})]
['parameters', 'val', 'optimizer.optimizer']
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass

from app.engine import Graph
from app.engine.optimization.preflight import reachable_parameters
from app.services.errors import Issue
from app.services.optimization.spec import EvaluationSpec, LossSpec, OptimizationSpec
from app.services.optimization.split import split_counts


@dataclass(frozen=True, slots=True)
class Sizes:
    """How many items each part of a run's data has."""

    train: int
    val: int
    test: int


def optimization_issues(
    spec: OptimizationSpec, graph: Graph, datasets: Mapping[str, int], aliases: Collection[str]
) -> list[Issue]:
    """Every problem of ``spec`` against ``graph``, ``datasets`` (id -> item count) and the
    endpoint ``aliases``."""
    return [
        *_parameter_issues(spec, graph),
        *_data_issues(spec, datasets),
        *_alias_issues("optimizer.critic", spec.optimizer.critic, aliases),
        *_alias_issues("optimizer.optimizer", spec.optimizer.optimizer, aliases),
        *_loss_issues("loss", spec.loss, graph, aliases),
        *(_loss_issues("selection_metric", spec.selection_metric, graph, aliases)
          if spec.selection_metric is not None else ()),
    ]  # fmt: skip


def evaluation_issues(
    spec: EvaluationSpec,
    graphs: Sequence[Graph],
    datasets: Mapping[str, int],
    aliases: Collection[str],
) -> list[Issue]:
    """Every problem of ``spec`` against the graph version(s) it scores (one, or the two
    paired), ``datasets`` and ``aliases``. An issue found in both versions is listed once."""
    issues = list(_dataset_issues("dataset", spec.dataset, datasets))
    for graph in graphs:
        issues += [i for i in _loss_issues("loss", spec.loss, graph, aliases) if i not in issues]
    return issues


def trained_parameters(spec: OptimizationSpec, graph: Graph) -> list[str]:
    """The parameters the run trains: those named, or every trainable one of the graph."""
    if spec.parameters is not None:
        return list(spec.parameters)
    return [name for name, param in graph.parameters.items() if param.trainable]


def data_sizes(spec: OptimizationSpec, datasets: Mapping[str, int]) -> Sizes:
    """The item counts of train, val and test (``KeyError`` for an unknown dataset,
    ``ValueError`` for counts the dataset cannot hold: check the spec first)."""
    if spec.dataset is not None and spec.split is not None:
        return Sizes(*split_counts(datasets[spec.dataset], spec.split))
    test = 0 if spec.test is None else datasets[spec.test]
    return Sizes(datasets[spec.train or ""], datasets[spec.val or ""], test)


def _parameter_issues(spec: OptimizationSpec, graph: Graph) -> Iterator[Issue]:
    reachable = reachable_parameters(graph)
    if spec.parameters is None:
        trained = trained_parameters(spec, graph)
        if not trained:
            yield Issue("parameters", "the graph has no trainable parameters")
        for name in trained:
            if name not in reachable:
                message = f"trainable parameter {name!r} {_UNREACHABLE}: name the ones to train"
                yield Issue("parameters", message)
        return
    known = ", ".join(graph.parameters) or "none"
    for position, name in enumerate(spec.parameters):
        param, field = graph.parameters.get(name), f"parameters[{position}]"
        if param is None:
            yield Issue(field, f"unknown parameter {name!r} (graph parameters: {known})")
        elif not param.trainable:
            yield Issue(field, f"parameter {name!r} is not trainable")
        elif name not in reachable:
            yield Issue(field, f"parameter {name!r} {_UNREACHABLE}")


_UNREACHABLE = "is not read by any node an output depends on, so it could never change"


def _data_issues(spec: OptimizationSpec, datasets: Mapping[str, int]) -> Iterator[Issue]:
    if spec.dataset is not None and spec.split is not None:
        found = list(_dataset_issues("dataset", spec.dataset, datasets))
        yield from found or _split_issues(spec, datasets[spec.dataset])
        return
    for name in ("train", "val", "test"):
        dataset_id = getattr(spec, name)
        if dataset_id is not None:
            yield from _dataset_issues(name, dataset_id, datasets)
    if spec.test is not None and spec.test in (spec.train, spec.val):
        yield Issue("test", "the test dataset must not be the train or val dataset")


def _dataset_issues(field: str, dataset_id: str, datasets: Mapping[str, int]) -> Iterator[Issue]:
    count = datasets.get(dataset_id)
    if count is None:
        yield Issue(field, f"unknown dataset {dataset_id!r}")
    elif count == 0:
        yield Issue(field, f"dataset {dataset_id!r} has no items")


def _split_issues(spec: OptimizationSpec, n: int) -> Iterator[Issue]:
    assert spec.split is not None
    try:
        train, val, _ = split_counts(n, spec.split)
    except ValueError as exc:
        yield Issue("split", str(exc))
        return
    for name, count in (("train", train), ("val", val)):
        if count == 0:
            yield Issue(f"split.{name}", f"the split leaves {name} empty ({n:,} items in all)")


def _alias_issues(field: str, alias: str, aliases: Collection[str]) -> Iterator[Issue]:
    if alias not in aliases:
        known = ", ".join(sorted(aliases)) or "none configured"
        yield Issue(field, f"unknown endpoint alias {alias!r} (known: {known})")


def _loss_issues(
    field: str, loss: LossSpec, graph: Graph, aliases: Collection[str]
) -> Iterator[Issue]:
    outputs = list(graph.outputs)
    for position, term in enumerate(loss.verifiers):
        where = f"{field}.verifiers[{position}].output"
        if term.output is not None and term.output not in outputs:
            message = f"graph {graph.name!r} has no output {term.output!r} (outputs: "
            yield Issue(where, message + f"{', '.join(outputs)})")
        elif term.output is None and len(outputs) > 1:
            message = f"graph {graph.name!r} has outputs {', '.join(outputs)}: name one"
            yield Issue(where, message)
    if loss.judge is not None:
        yield from _alias_issues(f"{field}.judge.alias", loss.judge.alias, aliases)
