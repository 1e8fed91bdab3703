"""``inf-engine jobs``: submit a JSONL file and follow it; status, list, results, cancel,
retry, events."""

from __future__ import annotations

import contextlib
import itertools
import json
import sys
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer

from app.cli.common import ApiKeyOption, JsonOption, UrlOption, connect, fail
from app.cli.follow import follow_job
from app.cli.output import duration, echo_fields, echo_json, echo_table, rate
from app.client import Client, ClientError
from app.lifecycle import TERMINAL_JOB_STATUSES, ItemStatus, JobStatus

app = typer.Typer(help="Batch jobs: submit, follow, inspect, cancel, retry.", no_args_is_help=True)

JobId = Annotated[str, typer.Argument(help="the job's id", show_default=False)]
OutputOption = Annotated[
    Path | None,
    typer.Option("--output", "-o", help="write the results (JSONL) to this file", dir_okay=False),
]
STATUSES = tuple(JobStatus)
UNSUCCESSFUL = TERMINAL_JOB_STATUSES - {JobStatus.COMPLETED}


@app.command("submit")
def submit(
    graph: Annotated[str, typer.Argument(help="graph id or name", show_default=False)],
    inputs: Annotated[
        Path,
        typer.Argument(
            help="JSONL file: one JSON object of inputs per line",
            exists=True,
            dir_okay=False,
            show_default=False,
        ),
    ],
    version: Annotated[
        int | None, typer.Option(help="graph version (default: the active one)")
    ] = None,
    priority: Annotated[int, typer.Option(help="lower runs first (-1000..1000)")] = 0,
    webhook_url: Annotated[
        str | None, typer.Option(help="called with the job's status when it ends")
    ] = None,
    cache: Annotated[
        str | None, typer.Option(help="response ledger: off, read or read_write")
    ] = None,
    replay: Annotated[
        str | None, typer.Option(help="strict: every call must be in the ledger")
    ] = None,
    output: OutputOption = None,
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="print the job id and return at once")
    ] = False,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Submit a JSONL file of inputs and follow the job to its end.

    Shows a progress bar (plain lines when stdout is not a terminal); exits 1 if the job
    failed or was cancelled.

    inf-engine jobs submit extract-and-compare inputs.jsonl --output results.jsonl
    """
    with connect(url, api_key) as client:
        job = client.submit(
            graph, inputs, version=version, priority=priority, webhook_url=webhook_url,
            cache=cache, replay=replay,
        )  # fmt: skip
        if no_wait:
            typer.echo(job["id"])
            return
        typer.echo(f"job {job['id']} queued: {job['counts']['total']} items")
        _finish(client, job, output)


@app.command("wait")
def wait(
    job_id: JobId,
    output: OutputOption = None,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Follow a job to its end as submit does; exit 1 if it failed or was cancelled."""
    with connect(url, api_key) as client:
        _finish(client, client.job(job_id), output)


def _finish(client: Client, job: dict[str, Any], output: Path | None) -> None:
    with _interruptible(job["id"]):
        status = follow_job(client, job)
    if output is not None:
        count = _write_results(client, job["id"], output)
        typer.echo(f"{count} results written to {output}")
    if status in UNSUCCESSFUL:
        raise typer.Exit(1)


@contextlib.contextmanager
def _interruptible(job_id: str) -> Iterator[None]:
    try:
        yield
    except KeyboardInterrupt:
        fail(f"\nstopped following; job {job_id} goes on (inf-engine jobs status {job_id})", 130)


def _write_results(client: Client, job_id: str, output: Path, custom_id: str | None = None) -> int:
    with output.open("w", encoding="utf-8") as handle:
        return _copy_results(client, job_id, handle, custom_id)


def _copy_results(client: Client, job_id: str, out: TextIO, custom_id: str | None = None) -> int:
    count = 0
    for item in client.results(job_id, custom_id):
        out.write(json.dumps(item, ensure_ascii=False) + "\n")
        count += 1
    return count


@app.command("status")
def status(
    job_id: JobId, url: UrlOption = None, api_key: ApiKeyOption = None, as_json: JsonOption = False
) -> None:
    """A job's status: counts, throughput, ETA, tokens and cost."""
    with connect(url, api_key) as client:
        job = client.job(job_id)
        names = {} if as_json else graph_names(client, [job])
    if as_json:
        echo_json(job)
    else:
        echo_fields(job_fields(job, names))


def job_fields(
    job: dict[str, Any], names: Mapping[str, str] | None = None
) -> list[tuple[str, Any]]:
    """What ``jobs status`` shows, as (name, value) pairs; ``names`` maps graph ids to names."""
    counts, usage = job["counts"], job.get("usage") or {}
    done = counts[ItemStatus.SUCCEEDED] + counts[ItemStatus.FAILED] + counts[ItemStatus.CANCELLED]
    return [
        ("job", job["id"]),
        ("graph", _graph_label(job, names or {})),
        ("status", job["status"]),
        ("items", f"{done}/{counts['total']} done"),
        ("", _outcomes(counts)),
        ("pace", f"{rate(job.get('throughput_per_s'))}, eta {duration(job.get('eta_s'))}"),
        ("tokens", f"{usage.get('input_tokens', 0)} in, {usage.get('output_tokens', 0)} out"),
        ("cost", usage.get("cost")),
        ("error", job.get("error")),
        ("retry of", job.get("retry_of")),
        ("created", job.get("created_at")),
        ("started", job.get("started_at")),
        ("finished", job.get("finished_at")),
    ]


def _outcomes(counts: dict[str, Any]) -> str:
    names = (
        ItemStatus.SUCCEEDED,
        ItemStatus.FAILED,
        ItemStatus.CANCELLED,
        ItemStatus.RUNNING,
        ItemStatus.WAITING,
        ItemStatus.PENDING,
    )
    return ", ".join(f"{counts.get(name, 0)} {name}" for name in names)


@app.command("list")
def list_jobs(
    status: Annotated[
        str | None, typer.Option(help="only jobs in this status: " + ", ".join(STATUSES))
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="at most this many jobs")] = 20,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """The newest jobs first."""
    if status is not None and status not in STATUSES:
        raise typer.BadParameter(f"one of {', '.join(STATUSES)}", param_hint="--status")
    with connect(url, api_key) as client:
        jobs = list(itertools.islice(client.jobs(status, page_size=min(limit, 1000)), limit))
        names = graph_names(client, jobs)
    headers = ("ID", "GRAPH", "STATUS", "DONE", "FAILED", "CREATED")
    # Whole ids, however narrow the terminal: a shortened one is no use to the other commands.
    echo_table(headers, [_row(job, names) for job in jobs], whole=(0,))


def _row(job: dict[str, Any], names: Mapping[str, str]) -> tuple[Any, ...]:
    counts = job["counts"]
    done = counts[ItemStatus.SUCCEEDED] + counts[ItemStatus.FAILED] + counts[ItemStatus.CANCELLED]
    progress = f"{done}/{counts['total']}"
    return (
        job["id"],
        _graph_label(job, names),
        job["status"],
        progress,
        counts[ItemStatus.FAILED],
        job["created_at"],
    )


def _graph_label(job: dict[str, Any], names: Mapping[str, str]) -> str:
    """``extract-and-compare v2`` (the graph's id where its name is unknown); ``-`` where the
    answer does not name the graph."""
    graph_id = job.get("graph_id")
    if graph_id is None:
        return "-"
    return f"{names.get(graph_id, graph_id)} v{job['graph_version']}"


def graph_names(client: Client, jobs: Iterable[dict[str, Any]]) -> dict[str, str]:
    """Graph id -> name for the graphs of ``jobs``, one request per distinct graph; a graph
    that cannot be read (deleted meanwhile) keeps its id."""
    names = {}
    for graph_id in {job["graph_id"] for job in jobs if job.get("graph_id")}:
        with contextlib.suppress(ClientError):
            names[graph_id] = client.graph(graph_id)["name"]
    return names


CustomIdOption = Annotated[
    str | None, typer.Option("--custom-id", help="only the item submitted with this custom_id")
]


@app.command("results")
def results(
    job_id: JobId,
    output: OutputOption = None,
    custom_id: CustomIdOption = None,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Every item's result in input order, one JSON object per line (stdout by default), with
    its custom_id and metadata; ``--custom-id`` picks one item."""
    with connect(url, api_key) as client:
        if output is None:
            _copy_results(client, job_id, sys.stdout, custom_id)
            return
        count = _write_results(client, job_id, output, custom_id)
    typer.echo(f"{count} results written to {output}")


@app.command("cancel")
def cancel(job_id: JobId, url: UrlOption = None, api_key: ApiKeyOption = None) -> None:
    """Cancel a job: no new item starts; finished results stay readable."""
    with connect(url, api_key) as client:
        job = client.cancel(job_id)
    typer.echo(f"job {job['id']} {job['status']}")


@app.command("retry")
def retry(
    job_id: JobId,
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="print the new job's id and return at once")
    ] = False,
    output: OutputOption = None,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Run the failed items of an ended job again, as a new job, and follow it to its end.

    inf-engine jobs retry JOB_ID --output retried.jsonl
    """
    with connect(url, api_key) as client:
        job = client.retry(job_id)
        if no_wait:
            typer.echo(job["id"])
            return
        typer.echo(f"job {job['id']} queued: {job['counts']['total']} failed items of {job_id}")
        _finish(client, job, output)


@app.command("events")
def events(
    job_id: JobId,
    after: Annotated[int, typer.Option(min=0, help="only events with a higher id")] = 0,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """The job's events as JSON lines (id, kind, data), live until the job ends."""
    with connect(url, api_key) as client, _interruptible(job_id):
        for event in client.events(job_id, after=after):
            record = {"id": event.id, "kind": event.kind, "data": event.data}
            typer.echo(json.dumps(record, ensure_ascii=False))


@app.command("waits")
def waits(
    job_id: JobId, url: UrlOption = None, api_key: ApiKeyOption = None, as_json: JsonOption = False
) -> None:
    """The job's waits at human nodes, with their prompts."""
    with connect(url, api_key) as client:
        found = client.waits(job_id)
    if as_json:
        echo_json(found)
        return
    rows = [
        (w["item"], w["node"], w["status"], w.get("prompt") or "", w.get("deadline")) for w in found
    ]
    echo_table(("item", "node", "status", "prompt", "deadline"), rows)


@app.command("answer")
def answer(
    job_id: JobId,
    index: Annotated[int, typer.Argument(min=0, help="the item's index", show_default=False)],
    node: Annotated[str, typer.Argument(help="the human node's id", show_default=False)],
    value: Annotated[str, typer.Argument(help="the answer, as JSON", show_default=False)],
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Answer one wait (kept if the item has not reached the node yet)."""
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as exc:
        fail(f"the answer is not JSON: {exc}")
    with connect(url, api_key) as client:
        wait = client.answer(job_id, index, node, parsed)
    typer.echo(f"item {wait['item']} node {wait['node']}: {wait['status']}")
