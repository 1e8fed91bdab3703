"""``inf-engine optimize``: train a graph version's parameters on stored datasets; follow the
run's score, budget and accepted steps live; its status; cancel it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from app.cli.common import ApiKeyOption, JsonOption, UrlOption, connect, fail
from app.cli.output import echo_fields, echo_json, echo_table
from app.client import Client, Event
from app.lifecycle import EventKind, OptimizationState

app = typer.Typer(
    help="Optimization runs: a graph version's parameters trained on datasets.",
    no_args_is_help=True,
)

RunId = Annotated[str, typer.Argument(help="the optimization run's id", show_default=False)]


@app.command("start")
def start(
    spec: Annotated[
        Path,
        typer.Argument(
            help="a JSON file with the POST /v1/optimizations body", exists=True, dir_okay=False
        ),
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="print the projection per role; start nothing")
    ] = False,
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="print the run's id and return at once")
    ] = False,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Queue an optimization run and follow it to its end (exit 1 unless it succeeded).

    inf-engine optimize start run.json
    """
    body = {**_read(spec), **({"dry_run": True} if dry_run else {})}
    with connect(url, api_key) as client:
        started = client.start_optimization(body)
        if dry_run:
            _show_projection(started, as_json)
            return
        if no_wait:
            typer.echo(started["id"])
            return
        typer.echo(f"optimization {started['id']} queued")
        final = _follow(client, started["id"])
    _show(final, as_json)
    if final["state"] != OptimizationState.SUCCEEDED:
        raise typer.Exit(1)


def _read(path: Path) -> dict[str, Any]:
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        fail(f"error: {path} is not JSON: {exc}")
    if not isinstance(loaded, dict):
        fail(f"error: {path} holds no JSON object")
    return loaded


@app.command("status")
def status(
    run_id: RunId, url: UrlOption = None, api_key: ApiKeyOption = None, as_json: JsonOption = False
) -> None:
    """A run's state, stop reason, counters per role, best version, steps and test result."""
    with connect(url, api_key) as client:
        _show(client.optimization(run_id), as_json)


@app.command("follow")
def follow(
    run_id: RunId, url: UrlOption = None, api_key: ApiKeyOption = None, as_json: JsonOption = False
) -> None:
    """Follow a run live (validation score, budget, accepted steps) until it ends."""
    with connect(url, api_key) as client:
        final = _follow(client, run_id)
    _show(final, as_json)
    if final["state"] != OptimizationState.SUCCEEDED:
        raise typer.Exit(1)


@app.command("cancel")
def cancel(run_id: RunId, url: UrlOption = None, api_key: ApiKeyOption = None) -> None:
    """Cancel a run; the versions its accepted steps created stay."""
    with connect(url, api_key) as client:
        found = client.cancel_optimization(run_id)
    typer.echo(f"optimization {found['id']} {found['state']}")


def _follow(client: Client, run_id: str) -> dict[str, Any]:
    try:
        for event in client.optimization_events(run_id):
            line = event_line(event)
            if line is not None and event.kind == EventKind.BUDGET:
                line += projection_note(client.optimization(run_id).get("projection"))
            if line is not None:
                typer.echo(line)
    except KeyboardInterrupt:
        fail(
            f"\nstopped following; run {run_id} goes on (inf-engine optimize status {run_id})", 130
        )
    return client.optimization(run_id)


def event_line(event: Event) -> str | None:
    """One line for the events a person follows a run by; ``None`` for the others.

    >>> event_line(Event(9, "validated", {"step": 2, "score": 0.5, "n": 60}))
    'step 2: validation score 0.5000 (n=60)'
    """
    data = event.data
    lines: dict[str, Callable[[], str]] = {
        EventKind.STEP_STARTED: lambda: f"step {data['step']} (epoch {data['epoch']})",
        EventKind.VALIDATED: lambda: (
            f"step {data['step']}: validation score {data['score']:.4f} (n={data['n']})"
        ),
        EventKind.ACCEPTED: lambda: f"accepted: paired delta {data['delta']:+.4f}",
        EventKind.REJECTED: lambda: f"rejected: {data.get('reason', '')}",
        EventKind.VERSION_CREATED: lambda: f"version {data['version']} created (not active)",
        EventKind.BUDGET: lambda: _budget_line(data),
        EventKind.FINISHED: lambda: f"finished: {data['stop_reason']}",
        EventKind.TESTED: lambda: _test_line(data.get("test")),
    }
    make = lines.get(event.kind)
    return None if make is None else make()


def _budget_line(data: dict[str, Any]) -> str:
    total = data.get("total", {})
    exhausted = f", exhausted: {data['exhausted']}" if "exhausted" in data else ""
    return f"budget: {int(total.get('calls', 0))} calls{exhausted}"


def projection_note(projection: dict[str, Any] | None) -> str:
    """The live projection of a run's calls, as the budget line ends.

    >>> projection_note({"calls": {"spent": 120, "projected_total": 700, "upper_bound": 1884}})
    '; projected 700 calls in all (at most 1,884)'
    """
    if not projection:
        return ""
    calls = projection["calls"]
    return (
        f"; projected {calls['projected_total']:,} calls in all (at most {calls['upper_bound']:,})"
    )


def _test_line(test: dict[str, Any] | None) -> str:
    if not test:
        return "no test data"
    if "error" in test:
        return f"test failed: {test['error']}"
    return f"test: {test['mean']:.4f} [{test['low']:.4f}, {test['high']:.4f}] (n={test['n']})"


def _show(found: dict[str, Any], as_json: bool) -> None:
    if as_json:
        echo_json(found)
        return
    best = found["best"]
    score = "-" if best["score"] is None else f"{best['score']:.4f}"
    echo_fields(
        [
            ("optimization", found["id"]),
            ("state", found["state"]),
            ("stop reason", found.get("stop_reason")),
            ("graph", f"{found['graph_id']} from version {found['version']}"),
            ("steps", found["step"]),
            ("best", f"version {best['version']}, validation {score}"),
            ("test", _test_line(found.get("test")) if found.get("test") is not None else None),
            ("calls", _calls_field(found.get("projection"))),
            ("error", found.get("error")),
        ]
    )
    rows = [_role_row(role, usage) for role, usage in found["roles"].items()]
    if rows:
        echo_table(("ROLE", "CALLS", "TOKENS", "COST"), rows)


def _calls_field(projection: dict[str, Any] | None) -> str | None:
    if not projection:
        return None
    calls = projection["calls"]
    return f"{calls['spent']:,} spent{projection_note(projection)}"


def _role_row(role: str, usage: dict[str, Any]) -> tuple[str, int, int, str]:
    tokens = int(usage.get("input_tokens", 0) + usage.get("output_tokens", 0))
    return role, int(usage.get("calls", 0)), tokens, f"{usage.get('cost', 0.0):.4f}"


def _show_projection(found: dict[str, Any], as_json: bool) -> None:
    if as_json:
        echo_json(found)
        return
    typer.echo(f"dry run: {found['steps']} steps; nothing was started")
    rows = [(role, c["calls"], c["tokens"]) for role, c in found["roles"].items()]
    rows.append(("total", found["total"]["calls"], found["total"]["tokens"]))
    echo_table(("ROLE", "CALLS", "TOKENS"), rows)
    typer.echo(_expected_line(found.get("expected")))


def _expected_line(expected: dict[str, Any] | None) -> str:
    """The spend expected, beside the upper bound the table shows."""
    if not expected:
        return "expected: not given by this server"
    if expected["basis"] != "history":
        return "expected: the upper bound (no earlier comparable run of this graph)"
    runs = expected["runs"]
    cost = "" if expected["cost"] is None else f", cost {expected['cost']:.4f}"
    return (
        f"expected: {expected['calls']:,} calls, {expected['tokens']:,} tokens{cost} "
        f"(from {runs} earlier run{'' if runs == 1 else 's'})"
    )
