"""``inf-engine evaluate``: score a graph version (or two, paired) on a dataset; its status."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from app.cli.common import ApiKeyOption, JsonOption, UrlOption, connect, fail
from app.cli.output import echo_fields, echo_json, echo_table
from app.lifecycle import ItemStatus, JobStatus

app = typer.Typer(
    help="Evaluations: a graph version, or two paired, scored on a dataset.", no_args_is_help=True
)

EvaluationId = Annotated[str, typer.Argument(help="the evaluation's id", show_default=False)]


@app.command("start")
def start(
    graph: Annotated[str, typer.Argument(help="graph id or name", show_default=False)],
    dataset: Annotated[str, typer.Option(help="the dataset's id", show_default=False)],
    version: Annotated[
        list[int] | None,
        typer.Option(help="the version to score (default: the active one); twice to pair two"),
    ] = None,
    verifier: Annotated[
        list[str] | None, typer.Option(help="a verifier op (default: answer_equals); repeatable")
    ] = None,
    loss: Annotated[
        Path | None,
        typer.Option(help="a JSON file with the whole loss spec", exists=True, dir_okay=False),
    ] = None,
    seed: Annotated[int, typer.Option(help="seeds the bootstrap intervals")] = 0,
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="print the evaluation's id and return at once")
    ] = False,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Queue an evaluation and wait for its result (exit 1 unless it completed).

    inf-engine evaluate start task-a --dataset DATASET_ID --version 1 --version 2
    """
    spec = _spec(graph, dataset, version or [], _loss(verifier or [], loss), seed)
    with connect(url, api_key) as client:
        started = client.start_evaluation(spec)
        if no_wait:
            typer.echo(started["id"])
            return
        typer.echo(f"evaluation {started['id']} queued: {started['counts']['total']} items")
        final = client.wait_evaluation(started["id"])
    _show(final, as_json)
    if final["status"] != JobStatus.COMPLETED:
        raise typer.Exit(1)


def _spec(
    graph: str, dataset: str, versions: list[int], loss: dict[str, Any], seed: int
) -> dict[str, Any]:
    spec: dict[str, Any] = {"graph_id": graph, "dataset": dataset, "loss": loss, "seed": seed}
    if len(versions) == 1:
        spec["version"] = versions[0]
    elif versions:
        spec["versions"] = versions
    return spec


def _loss(verifiers: list[str], path: Path | None) -> dict[str, Any]:
    if path is None:
        return {"verifiers": [{"op": op} for op in verifiers or ["answer_equals"]]}
    if verifiers:
        fail("give --loss or --verifier, not both")
    try:
        loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        fail(f"error: {path} is not JSON: {exc}")
    return loaded


@app.command("status")
def status(
    evaluation_id: EvaluationId,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """An evaluation's state and counts, and its result once completed."""
    with connect(url, api_key) as client:
        found = client.evaluation(evaluation_id)
    _show(found, as_json)


def _show(found: dict[str, Any], as_json: bool) -> None:
    if as_json:
        echo_json(found)
        return
    counts = found["counts"]
    scored = counts[ItemStatus.SUCCEEDED] + counts[ItemStatus.FAILED]
    echo_fields(
        [
            ("evaluation", found["id"]),
            ("status", found["status"]),
            ("graph", f"{found['graph_id']} versions {', '.join(map(str, found['versions']))}"),
            ("dataset", found["dataset"]),
            ("items", f"{scored}/{counts['total']} scored"),
            ("error", found.get("error")),
        ]
    )
    result = found.get("result")
    if result is not None:
        _show_result(result)


def _show_result(result: dict[str, Any]) -> None:
    rows = [
        (v["version"], f"{v['mean']:.4f}", f"[{v['low']:.4f}, {v['high']:.4f}]", v["n"],
         v["failures"])
        for v in result["versions"]
    ]  # fmt: skip
    echo_table(("VERSION", "MEAN", "95% INTERVAL", "N", "FAILURES"), rows)
    paired = result.get("paired")
    if paired is not None:
        interval = f"[{paired['low']:+.4f}, {paired['high']:+.4f}]"
        typer.echo(f"paired delta (b - a): {paired['delta']:+.4f} {interval}")
