"""Structured logs: one JSON object per line, the job, item and node as fields."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from pathlib import Path
from typing import TextIO

import pytest

from app.logs import JsonFormatter, configure, job_context, set_item
from app.settings import Settings


def formatted(logger: logging.Logger, emit: object) -> dict[str, object]:
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger.addHandler(handler)
    try:
        assert callable(emit)
        emit()
    finally:
        logger.removeHandler(handler)
    (record,) = records
    line = JsonFormatter().format(record)
    assert "\n" not in line
    return dict(json.loads(line))


@pytest.fixture
def logger() -> logging.Logger:
    found = logging.getLogger("tests.logs")
    found.setLevel(logging.INFO)
    return found


def test_a_line_carries_its_fields_and_the_tasks_job_and_item(logger: logging.Logger) -> None:
    async def item_task() -> dict[str, object]:
        set_item(7)
        return formatted(logger, lambda: logger.info("node %s failed", "x", extra={"node": "x"}))

    async def job() -> dict[str, object]:
        with job_context("job-1"):
            return await asyncio.create_task(item_task())

    entry = asyncio.run(job())

    assert entry["message"] == "node x failed"
    assert (entry["level"], entry["logger"]) == ("INFO", "tests.logs")
    assert (entry["job_id"], entry["item"], entry["node"]) == ("job-1", 7, "x")
    assert str(entry["ts"]).endswith("+00:00")


def test_outside_a_job_there_are_no_job_fields_and_exceptions_are_kept(
    logger: logging.Logger,
) -> None:
    def fail() -> None:
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("it broke")

    entry = formatted(logger, fail)

    assert "job_id" not in entry
    assert "item" not in entry
    assert "ValueError: boom" in str(entry["exception"])


def _console_line(stream: TextIO, fmt: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Configure logging as the service does on ``stream`` (as stderr), log one line, read it."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    monkeypatch.setattr(sys, "stderr", stream)
    try:
        configure("INFO", fmt)
        logging.getLogger("tests.console").info("lease lost")
    finally:
        root.handlers[:], root.level = saved
    stream.flush()


def _pty_line(fmt: str, monkeypatch: pytest.MonkeyPatch) -> str:
    leader, follower = os.openpty()
    with os.fdopen(follower, "w", encoding="utf-8") as stream:
        _console_line(stream, fmt, monkeypatch)
        return os.read(leader, 4096).decode()


def test_the_default_console_log_is_text_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INF_LOG_FORMAT", raising=False)
    line = _pty_line(Settings().log_format, monkeypatch)
    assert "INFO tests.console lease lost" in line
    assert not line.startswith("{")


def test_the_default_console_log_is_json_when_not_a_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("INF_LOG_FORMAT", raising=False)
    with (tmp_path / "log").open("w+", encoding="utf-8") as stream:
        _console_line(stream, Settings().log_format, monkeypatch)
        stream.seek(0)
        entry = json.loads(stream.readline())
    assert entry["message"] == "lease lost"


def test_an_explicit_format_wins_over_the_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INF_LOG_FORMAT", "json")
    assert json.loads(_pty_line(Settings().log_format, monkeypatch))["message"] == "lease lost"
