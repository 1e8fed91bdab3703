"""Structured logs: one JSON object per line, the job, item and node as fields."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from app.logs import JsonFormatter, job_context, set_item


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
