"""A batch's output and error files: made as the run ends (the kind's end-of-run hook),
their lines read from the batch's stored items in input order, so they are complete and
ordered whatever happened to the runners (a line is stored once: a custom_id is never
answered twice).

Answered lines go to the output file, refused, failed and expired ones to the error file;
lines a cancel stopped before they ran are in neither.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.base import utcnow
from app.db.models import BatchRecord, Job, StoredFile
from app.db.repositories import batches as repo
from app.db.repositories import files as files_repo
from app.lifecycle import BatchPart, FilePurpose, ItemStatus
from app.services.batches import ids, lines

PAGE = 500
PARTS = {ItemStatus.SUCCEEDED: BatchPart.OUTPUT, ItemStatus.FAILED: BatchPart.ERRORS}


def part_of(status: str) -> BatchPart | None:
    """Which file an item of this status is a line of (``None``: neither)."""
    return PARTS.get(ItemStatus(status))


def _encoded(
    job_id: str, page: list[tuple[int, str, Any, str | None]], part: BatchPart
) -> list[bytes]:
    return [
        lines.encoded(_line(job_id, index, status, output, custom_id))
        for index, status, output, custom_id in page
        if part_of(status) is part
    ]


def _line(
    job_id: str, index: int, status: str, output: Any, custom_id: str | None
) -> dict[str, Any]:
    if isinstance(output, dict) and "custom_id" in output:
        return output
    # NOTE: an item the writer could not store keeps only its error; say so in its line.
    line_id = ids.request_id(job_id, index)
    return lines.stopped(line_id, custom_id or "", "server_error", f"the line {status} unstored")


async def output_chunks(
    sessions: async_sessionmaker[AsyncSession], stored: StoredFile
) -> AsyncIterator[bytes]:
    """An output file's bytes, a page of lines per chunk, each page read in a short session
    of its own (no connection is held while the client reads)."""
    assert stored.batch_id is not None
    assert stored.batch_part is not None
    part, after = BatchPart(stored.batch_part), -1
    while True:
        async with sessions() as session:
            page = await repo.items_page(session, stored.batch_id, after, PAGE)
        chunk = b"".join(_encoded(stored.batch_id, page, part))
        if chunk:
            yield chunk
        if len(page) < PAGE:
            return
        after = page[-1][0]


@dataclass(slots=True)
class Tally:
    """What an ended batch's files hold: bytes and lines per file, expired lines and the
    cached prompt tokens of its answers."""

    bytes: dict[BatchPart, int] = field(default_factory=lambda: dict.fromkeys(BatchPart, 0))
    lines: dict[BatchPart, int] = field(default_factory=lambda: dict.fromkeys(BatchPart, 0))
    expired: int = 0
    cached_tokens: int = 0

    def add(self, part: BatchPart, line: dict[str, Any]) -> None:
        """Count one line, encoded here (a line stored without its size)."""
        self.bytes[part] += len(lines.encoded(line))
        self.lines[part] += 1
        if part is BatchPart.OUTPUT:
            self.cached_tokens += lines.cached_tokens(line)
        elif (line.get("error") or {}).get("code") == lines.EXPIRED:
            self.expired += 1


async def finalize(session: AsyncSession, batch: BatchRecord, job: Job) -> bool:
    """Make the ended batch's output and error files (once: False if done meanwhile)."""
    tally = await tally_of(session, job.id)
    now = utcnow()
    made = {part: ids.file_id() for part in BatchPart if tally.lines[part]}
    values = {
        "finalized_at": now, "expired_lines": tally.expired, "cached_tokens": tally.cached_tokens,
        "output_file_id": made.get(BatchPart.OUTPUT), "error_file_id": made.get(BatchPart.ERRORS),
    }  # fmt: skip
    if not await repo.finalize(session, batch.id, values):
        return False
    for part, file_id in made.items():
        stored = StoredFile(
            id=file_id, tenant_id=batch.tenant_id, filename=f"{batch.id}_{part.value}.jsonl",
            purpose=FilePurpose.BATCH_OUTPUT.value, bytes=tally.bytes[part],
            lines=tally.lines[part], batch_id=batch.id, batch_part=part.value, created_at=now,
        )  # fmt: skip
        await files_repo.add_file(session, stored)
    return True


async def tally_of(session: AsyncSession, job_id: str) -> Tally:
    """Both files' sizes and lines, expired lines and cached tokens: summed by the database
    over the lines stored with their size, the others (stored before sizes were) read a page
    at a time and encoded here."""
    tally, statuses = Tally(), [status.value for status in PARTS]
    answered = (ItemStatus.SUCCEEDED.value, lines.CACHED_TOKENS)
    expired = (ItemStatus.FAILED.value, lines.ERROR_CODE, lines.EXPIRED)
    for status, count, size, cached, stopped in await repo.sized_totals(
        session, job_id, statuses, answered, expired
    ):
        part = PARTS[ItemStatus(status)]
        tally.lines[part] += count
        tally.bytes[part] += size
        tally.cached_tokens += cached
        tally.expired += stopped
    after = -1
    while True:
        page = await repo.unsized_page(session, job_id, after, PAGE, statuses)
        for index, status, output, custom_id in page:
            tally.add(PARTS[ItemStatus(status)], _line(job_id, index, status, output, custom_id))
        if len(page) < PAGE:
            return tally
        after = page[-1][0]
