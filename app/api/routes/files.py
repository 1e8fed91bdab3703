"""``/v1/files``: OpenAI-style files (multipart upload, list, read, content, delete), as the
``openai`` SDK calls them."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from starlette.datastructures import FormData, UploadFile

from app.api.deps import ReadSessionDep, RuntimeDep, SessionDep, TenantDep
from app.services.batches import files
from app.services.batches.views import file_object
from app.services.errors import Issue, Malformed

router = APIRouter(prefix="/v1/files", tags=["files"])
MULTIPART = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file", "purpose"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "purpose": {"type": "string"},
                    },
                }
            }
        },
    }
}


@router.post("", openapi_extra=MULTIPART)
async def upload_file(
    request: Request, runtime: RuntimeDep, session: SessionDep, tenant: TenantDep
) -> dict[str, Any]:
    """Upload a file (``file`` and ``purpose``), spooled and copied to disk in chunks; a
    ``batch`` file holds at most ``INF_BATCH_MAX_LINES`` lines and ``INF_BATCH_MAX_BYTES``."""
    form = await _form(request)
    try:
        part, purpose = form.get("file"), form.get("purpose")
        upload = None
        if isinstance(part, UploadFile):
            upload = files.Upload(part.filename or "", part.file)
        named = purpose if isinstance(purpose, str) else None
        stored = await files.create(runtime.settings, session, tenant, upload, named)
    finally:
        await form.close()  # the spooled parts are deleted
    return file_object(stored)


async def _form(request: Request) -> FormData:
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        message = "send multipart/form-data with the parts file and purpose"
        raise Malformed("the upload is not multipart", [Issue("Content-Type", message)])
    return await request.form(max_files=1, max_fields=8)


@router.get("")
async def list_files(
    session: ReadSessionDep, tenant: TenantDep, limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    after: Annotated[str | None, Query(max_length=64)] = None,
    purpose: Annotated[str | None, Query(max_length=32)] = None,
) -> dict[str, Any]:  # fmt: skip
    """The tenant's files, newest first: ``{object: "list", data, has_more}``."""
    found, more = await files.listing(session, tenant, limit, purpose, after)
    data = [file_object(stored) for stored in found]
    return {"object": "list", "data": data, "has_more": more,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None}  # fmt: skip


@router.get("/{file_id}")
async def retrieve_file(file_id: str, session: ReadSessionDep, tenant: TenantDep) -> dict[str, Any]:
    """One file's object; another tenant's is not found."""
    return file_object(await files.find(session, tenant, file_id))


@router.get("/{file_id}/content", response_class=StreamingResponse)
async def file_content(
    file_id: str, runtime: RuntimeDep, session: ReadSessionDep, tenant: TenantDep
) -> StreamingResponse:
    """The file's bytes, streamed (an output file's lines in input order)."""
    _, chunks = await files.content(runtime, session, tenant, file_id)
    return StreamingResponse(chunks, media_type="application/octet-stream")


@router.delete("/{file_id}")
async def delete_file(
    file_id: str, runtime: RuntimeDep, session: SessionDep, tenant: TenantDep
) -> dict[str, Any]:
    """Delete the file: ``{id, object: "file", deleted: true}``."""
    deleted = await files.delete(runtime.settings, session, tenant, file_id)
    return {"id": deleted, "object": "file", "deleted": True}
