"""The ``inf-engine`` command: the server (``serve``, ``worker``, ``migrate``, ``keys``) and a
client of it (``graphs``, ``datasets``, ``jobs``, ``evaluate``, ``runs``;
``--url``/``--api-key`` or ``INF_URL``/``INF_API_KEY``)."""

from __future__ import annotations

import typer

from app.cli import datasets, evaluations, graphs, jobs, optimizations, runs, server

app = typer.Typer(help="inf-engine: run LLM pipeline graphs and batch jobs.", no_args_is_help=True)
app.command()(server.serve)
app.command()(server.worker)
app.command()(server.migrate)
app.add_typer(server.keys, name="keys")
app.add_typer(graphs.app, name="graphs")
app.add_typer(datasets.app, name="datasets")
app.add_typer(jobs.app, name="jobs")
app.add_typer(evaluations.app, name="evaluate")
app.add_typer(optimizations.app, name="optimize")
app.command("runs")(runs.runs)


def main() -> None:
    app()
