"""A batch's file sizes at its end: lines stored with their size are summed by the database,
those stored without one (before sizes were kept, or changed to be storable) are encoded
again, and either way each file's bytes and lines are those its download streams."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.repositories import batches as repo
from app.db.repositories import jobs, results
from app.db.repositories.results import ItemRow
from app.engine.records import LLMUsage
from app.lifecycle import BatchPart
from app.services.batches import lines, outputs
from tests.support.db import seed_job, seed_version


def usage(cached: int) -> LLMUsage:
    return LLMUsage("fast", "m", 30, 4, 0.1, "stop", 0.0, cached_tokens=cached)


def answer(index: int, text: str, cached: int) -> dict[str, Any]:
    names = (f"batch_req_x_{index}", f"c-{index}", f"req_x_{index}")
    return lines.answered(names, text, usage(cached), many=False, message=False)


def refusal(index: int) -> dict[str, Any]:
    return lines.refused(f"batch_req_x_{index}", f"c-{index}", f"req_x_{index}", 404,
                         "model_not_found", "the model 'nope' does not exist")  # fmt: skip


def expiry(index: int) -> dict[str, Any]:
    return lines.stopped(f"batch_req_x_{index}", f"c-{index}", lines.EXPIRED, "too late")


def row(job_id: str, index: int, status: str, line: Any, *, sized: bool) -> ItemRow:
    size = len(lines.encoded(line)) if sized and line is not None else None
    return ItemRow(job_id, index, status, line, None, 0, 0, 0.0, output_bytes=size)


async def downloaded(session: AsyncSession, job_id: str, part: BatchPart) -> bytes:
    page = await repo.items_page(session, job_id, -1, 100)
    return b"".join(outputs._encoded(job_id, page, part))


async def test_sized_and_unsized_lines_tally_as_their_files_download(
    session: AsyncSession,
) -> None:
    tenant, version = await seed_version(session)
    job = await seed_job(session, tenant, version.id, list(range(10)))
    await jobs.mark_running(session, job.id, list(range(10)))
    stored = [
        ("succeeded", answer(0, "plain", 7), True),
        ("succeeded", answer(1, "déjà vu, 日本語", 5), True),
        ("succeeded", answer(2, "from before sizes", 3), False),
        ("failed", refusal(3), True),
        ("failed", expiry(4), True),
        ("failed", expiry(5), False),
        ("failed", None, False),  # its output could not be stored: a server_error line
        ("cancelled", None, False),
        ("succeeded", answer(8, "", 0), True),
    ]
    items = [row(job.id, i, status, line, sized=sized) for i, (status, line, sized) in
             enumerate(stored)]  # fmt: skip
    await results.write_batch(session, [], items)
    await session.commit()

    tally = await outputs.tally_of(session, job.id)

    for part, count in ((BatchPart.OUTPUT, 4), (BatchPart.ERRORS, 4)):
        body = await downloaded(session, job.id, part)
        assert (tally.bytes[part], tally.lines[part]) == (len(body), count)
        assert body.count(b"\n") == count
    assert (tally.cached_tokens, tally.expired) == (15, 2)


async def test_only_items_stored_with_their_size_are_summed(session: AsyncSession) -> None:
    tenant, version = await seed_version(session)
    job = await seed_job(session, tenant, version.id, [0, 1])
    await jobs.mark_running(session, job.id, [0, 1])
    line = answer(0, "hi", 9)
    items = [row(job.id, 0, "succeeded", line, sized=True)]
    items.append(row(job.id, 1, "failed", None, sized=False))
    await results.write_batch(session, [], items)
    await session.commit()
    answered, stopped = ("succeeded", lines.CACHED_TOKENS), ("failed", lines.ERROR_CODE, "x")
    totals = await repo.sized_totals(session, job.id, ["succeeded", "failed"], answered, stopped)
    assert totals == [("succeeded", 1, len(lines.encoded(line)), 9, 0)]
