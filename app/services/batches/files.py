"""Files (``/v1/files``): uploads streamed to disk per tenant, their listing, content and
deletion; a batch's output and error files are read from its stored lines.

An upload is copied to disk in chunks and never held whole; a ``batch`` upload is bounded by
``batch_max_bytes`` and ``batch_max_lines`` (OpenAI's 200 MB and 50,000 lines by default),
any upload by ``max_file_bytes``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.base import utcnow
from app.db.models import StoredFile
from app.db.repositories import files as repo
from app.lifecycle import FilePurpose
from app.services.batches import ids, storage
from app.services.batches.outputs import output_chunks
from app.services.commits import after_commit
from app.services.errors import InvalidInput, Issue, NotFound, PayloadTooLarge
from app.settings import Settings

if TYPE_CHECKING:
    from app.services.runtime import Runtime

BATCH_FILE_TTL = timedelta(days=30)  # OpenAI's default expiry of a batch file
UPLOADABLE = tuple(p.value for p in FilePurpose if p is not FilePurpose.BATCH_OUTPUT)


@dataclass(frozen=True, slots=True)
class Upload:
    """An uploaded part: its file name and a readable (spooled) file."""

    filename: str
    file: BinaryIO


async def create(
    settings: Settings, session: AsyncSession, tenant_id: str, upload: Upload | None,
    purpose: str | None,
) -> StoredFile:  # fmt: skip
    """Store the upload under a new id; 422 naming ``purpose`` or ``file``, 413 past a limit."""
    if upload is None:
        raise InvalidInput("the upload has no file", [Issue("file", "a file part is required")])
    if purpose not in UPLOADABLE:
        message = f"purpose must be one of {', '.join(UPLOADABLE)} (got {purpose!r})"
        raise InvalidInput("the purpose is not supported", [Issue("purpose", message)])
    new_id = ids.file_id()
    path = storage.file_path(settings.files_dir, tenant_id, new_id)
    written = await _write(settings, path, upload.file, purpose)
    # NOTE: a transaction that fails after this leaves the bytes on disk, owned by no row.
    now = utcnow()
    expires = now + BATCH_FILE_TTL if purpose == FilePurpose.BATCH else None
    stored = StoredFile(
        id=new_id, tenant_id=tenant_id, filename=upload.filename[:512] or "upload.jsonl",
        purpose=purpose, bytes=written.size, lines=written.lines, created_at=now,
        expires_at=expires,
    )  # fmt: skip
    return await repo.add_file(session, stored)


async def _write(settings: Settings, path: Path, source: BinaryIO, purpose: str) -> storage.Written:
    batch = purpose == FilePurpose.BATCH
    limit = settings.max_file_bytes
    if batch:
        limit = min(limit, settings.batch_max_bytes)
    try:
        written = await storage.write_upload(path, source, limit)
    except storage.TooLarge as exc:
        raise PayloadTooLarge(str(exc), [Issue("file", str(exc))]) from None
    if batch and written.lines > settings.batch_max_lines:
        storage.remove(path)
        message = f"a batch file holds at most {settings.batch_max_lines} lines ({written.lines})"
        raise PayloadTooLarge(message, [Issue("file", message)])
    return written


async def find(session: AsyncSession, tenant_id: str, file_id: str) -> StoredFile:
    """The tenant's file; another tenant's is not found."""
    found = await repo.get_file(session, tenant_id, file_id)
    if found is None:
        raise NotFound(f"file {file_id!r} not found", [Issue("file_id", "no such file")])
    return found


async def listing(
    session: AsyncSession, tenant_id: str, limit: int, purpose: str | None, after: str | None
) -> tuple[list[StoredFile], bool]:
    """A page of the tenant's files, newest first, and whether more follow."""
    found = await repo.list_files(session, tenant_id, limit + 1, purpose, after)
    return found[:limit], len(found) > limit


async def content(
    runtime: Runtime, session: AsyncSession, tenant_id: str, file_id: str
) -> tuple[StoredFile, AsyncIterator[bytes]]:
    """The file and its bytes as a stream (an output file's lines come from its batch)."""
    found = await find(session, tenant_id, file_id)
    settings = runtime.settings
    if found.batch_id is not None:
        return found, output_chunks(runtime.reads, found)
    path = storage.file_path(settings.files_dir, tenant_id, found.id)
    return found, storage.read_chunks(path)


async def delete(settings: Settings, session: AsyncSession, tenant_id: str, file_id: str) -> str:
    """Delete the tenant's file (its bytes once this commits); 404 if there is none."""
    found = await find(session, tenant_id, file_id)
    await repo.delete_file(session, tenant_id, found.id)
    if found.batch_id is None:
        path = storage.file_path(settings.files_dir, tenant_id, found.id)
        after_commit(session, lambda: storage.remove(path))
    return found.id


def expiry(stored: StoredFile) -> datetime | None:
    return stored.expires_at


async def find_input(session: AsyncSession, tenant_id: str, file_id: str) -> StoredFile:
    """The tenant's upload of purpose ``batch`` named by a create's ``input_file_id``."""
    found = await repo.get_file(session, tenant_id, file_id)
    if found is None:
        message = f"no file {file_id!r}"
        raise NotFound(f"file {file_id!r} not found", [Issue("input_file_id", message)])
    if found.purpose != FilePurpose.BATCH:
        message = f"file {file_id!r} has purpose {found.purpose!r}; a batch needs 'batch'"
        raise InvalidInput("the input file is not a batch file", [Issue("input_file_id", message)])
    return found
