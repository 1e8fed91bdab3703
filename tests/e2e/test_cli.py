"""The ``inf-engine`` client commands as a user runs them, against ``python -m app serve``.

One server (SQLite, the fake LLM at 50 ms a call, two calls at a time per alias) serves the
module; each test runs the CLI as a subprocess and reads what it prints.
"""

from __future__ import annotations

import itertools
import json
import os
import pty
import re
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.client.support import ECHO_GRAPH
from tests.support.db import sqlite_url
from tests.support.fake_llm import FakeLLM
from tests.support.processes import (
    REPO_ROOT,
    ServerProcess,
    endpoints_for,
    free_port,
    server_env,
    servers,
    upload_graph,
)

ITEMS = 80
LONG_JOB_ITEMS = 1_000  # about 25 s of work: still running when a later command cancels it
CLI_TIMEOUT_S = 120.0
PROGRESS = re.compile(r"progress (\d+)/(\d+) succeeded=(\d+) failed=(\d+) ")
SETTINGS = {
    "progress_interval_s": 0.2,
    "events_poll_s": 0.05,
    "flush_interval_s": 0.02,
    "poll_s": 0.2,
}
ANSI_CODE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
PIPELINES = "tests.integration.client.pipelines"


@pytest.fixture(scope="module")
def server(
    fake_llm_server: FakeLLM, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """The service with the echo graph stored; calls to the fake LLM two at a time."""
    directory = tmp_path_factory.mktemp("cli")
    endpoints = endpoints_for(directory / "endpoints.yaml", fake_llm_server.base_url, "cli", 2)
    env = server_env(sqlite_url(directory / "service.sqlite"), endpoints, **SETTINGS)
    with servers(directory) as running:
        started = running.start("cli", env)
        upload_graph(started.client, ECHO_GRAPH)
        yield started


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m app ARGS`` with no ``INF_*`` settings but those of ``env``."""
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        cwd=REPO_ROOT,
        env={**clean_env(), **(env or {})},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
    )


def clean_env() -> dict[str, str]:
    return {name: value for name, value in os.environ.items() if not name.startswith("INF_")}


def inputs_file(path: Path, count: int) -> list[dict[str, str]]:
    rows = [{"text": f"doc {i}: electric cars charge from the grid"} for i in range(count)]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return rows


def test_submit_prints_advancing_progress_and_writes_results_in_order(
    server: ServerProcess, slow_llm: FakeLLM, tmp_path: Path
) -> None:
    rows = inputs_file(tmp_path / "inputs.jsonl", ITEMS)
    out = tmp_path / "out.jsonl"

    inputs = str(tmp_path / "inputs.jsonl")
    done = cli("jobs", "submit", "echo", inputs, "--output", str(out), "--url", server.url)

    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    progress = [tuple(map(int, m.groups())) for line in lines if (m := PROGRESS.match(line))]
    finished = [succeeded + failed for succeeded, failed in ((p[2], p[3]) for p in progress)]
    assert len(progress) >= 3, done.stdout
    assert [p[0] for p in progress] == finished
    assert all(a < b for a, b in itertools.pairwise(finished)), done.stdout
    assert {p[1] for p in progress} == {ITEMS}
    assert progress[-1] == (ITEMS, ITEMS, ITEMS, 0)
    assert f"job completed: {ITEMS} items, {ITEMS} succeeded, 0 failed, 0 cancelled" in lines
    results = [json.loads(line) for line in out.read_text().splitlines()]
    assert [result["index"] for result in results] == list(range(ITEMS))
    assert {result["status"] for result in results} == {"succeeded"}
    answers = [result["output"]["answer"] for result in results]
    assert all(answer.endswith(row["text"]) for answer, row in zip(answers, rows, strict=True))


def test_submit_on_a_terminal_draws_a_progress_bar(
    server: ServerProcess, slow_llm: FakeLLM, tmp_path: Path
) -> None:
    inputs_file(tmp_path / "inputs.jsonl", 20)
    command = ["jobs", "submit", "echo", str(tmp_path / "inputs.jsonl"), "--url", server.url]

    code, screen = run_in_terminal(command, tmp_path / "stderr.txt")

    text = ANSI_CODE.sub("", screen)
    assert code == 0, (tmp_path / "stderr.txt").read_text()
    assert re.search(r"running ━+ +\d+/20 0 failed", text), text
    assert re.search(r"completed ━+ 20/20 0 failed [\d.]+ items/s eta 0s", text), text
    assert "progress " not in text


def run_in_terminal(args: list[str], stderr: Path) -> tuple[int, str]:
    """Run the CLI with stdout on a pseudo-terminal; its exit code and everything it drew."""
    controller, terminal = pty.openpty()
    env = {**clean_env(), "TERM": "xterm-256color", "COLUMNS": "120"}
    with stderr.open("w") as errors:
        proc = subprocess.Popen(
            [sys.executable, "-m", "app", *args],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=terminal,
            stderr=errors,
        )
    os.close(terminal)
    try:
        screen = read_until_closed(controller, time.monotonic() + CLI_TIMEOUT_S)
    finally:
        os.close(controller)
    return proc.wait(timeout=CLI_TIMEOUT_S), screen


def read_until_closed(fd: int, deadline: float) -> str:
    chunks = []
    while time.monotonic() < deadline:
        if not select.select([fd], [], [], deadline - time.monotonic())[0]:
            continue
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the process closed its terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")


def test_push_a_python_module_then_run_it(server: ServerProcess, fake_llm: FakeLLM) -> None:
    # The installed console script, whose sys.path does not hold the working directory.
    script = str(Path(sys.executable).with_name("inf-engine"))
    pushes = [
        subprocess.run(
            [script, "graphs", "push", f"{PIPELINES}:{attr}", "--url", server.url, "--json"],
            cwd=REPO_ROOT,
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT_S,
        )
        for attr in ("Summarize", "summarize", "make_summarize")
    ]

    assert [push.returncode for push in pushes] == [0, 0, 0], [p.stderr for p in pushes]
    stored = [json.loads(push.stdout) for push in pushes]
    assert [graph["created"] for graph in stored] == [True, False, False]
    assert {(graph["name"], graph["version"], graph["hash"]) for graph in stored} == {
        ("Summarize", 1, stored[0]["hash"])
    }
    run = cli("runs", "Summarize", "--input", '{"text": "Cats purr."}', "--url", server.url)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["output"].endswith("Summarize: Cats purr.")
    listed = cli("graphs", "list", "--url", server.url)
    assert {line.split("\t")[0] for line in listed.stdout.splitlines()} >= {"Summarize", "echo"}


def test_module_references_that_cannot_be_traced_are_one_line_errors(
    server: ServerProcess,
) -> None:
    needs_args = cli("graphs", "push", f"{PIPELINES}:NeedsAlias", "--url", server.url)
    missing = cli("graphs", "push", "no_such_module:Pipeline", "--url", server.url)

    assert needs_args.returncode == missing.returncode == 1
    assert "cannot be called without arguments" in needs_args.stderr
    assert missing.stderr.startswith("error: cannot import no_such_module")
    assert "Traceback" not in needs_args.stderr + missing.stderr


def test_a_cancelled_job_fails_the_wait_and_keeps_its_results(
    server: ServerProcess, slow_llm: FakeLLM, tmp_path: Path
) -> None:
    inputs_file(tmp_path / "inputs.jsonl", LONG_JOB_ITEMS)
    env = {"INF_URL": server.url}  # the environment instead of --url
    submitted = cli("jobs", "submit", "echo", str(tmp_path / "inputs.jsonl"), "--no-wait", env=env)
    job_id = submitted.stdout.strip()

    cancelled = cli("jobs", "cancel", job_id, env=env)
    waited = cli("jobs", "wait", job_id, env=env)
    status = cli("jobs", "status", job_id, "--json", env=env)
    results = cli("jobs", "results", job_id, env=env)
    events = cli("jobs", "events", job_id, env=env)
    listed = cli("jobs", "list", "--status", "cancelled", env=env)

    assert submitted.returncode == 0, submitted.stderr
    assert cancelled.stdout.strip() == f"job {job_id} cancelled"
    assert waited.returncode == 1
    assert waited.stdout.splitlines()[-1].startswith(f"job cancelled: {LONG_JOB_ITEMS} items")
    assert json.loads(status.stdout)["status"] == "cancelled"
    indexes = [json.loads(line)["index"] for line in results.stdout.splitlines()]
    assert indexes == list(range(LONG_JOB_ITEMS))
    kinds = [json.loads(line)["kind"] for line in events.stdout.splitlines()]
    assert (kinds[0], kinds[-1]) == ("job_submitted", "job_cancelled")
    assert [line.split("\t")[0] for line in listed.stdout.splitlines()][:1] == [job_id]


def test_failures_are_readable_messages_without_tracebacks(
    server: ServerProcess, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine"}\n{"other": "no text"}\n')

    missing = cli("jobs", "status", "no-such-job", "--url", server.url)
    invalid = cli("jobs", "submit", "echo", str(bad), "--url", server.url)
    refused = cli("jobs", "list", "--url", f"http://127.0.0.1:{free_port()}")

    assert (missing.returncode, invalid.returncode, refused.returncode) == (1, 1, 1)
    assert missing.stderr == "error: 404 Not found: job 'no-such-job' not found\n"
    assert invalid.stderr.startswith("error: 422 Invalid input")
    assert "  - line 2: inputs: " in invalid.stderr
    assert refused.stderr.startswith("error: cannot connect to http://127.0.0.1:")
    assert len(refused.stderr.splitlines()) == 1
    assert "Traceback" not in missing.stderr + invalid.stderr + refused.stderr
