"""``/v1/datasets``: upload (JSONL), list, read, items."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from app.api.bodies import BodyStream, check_media_type
from app.api.deps import PageBefore, PageLimit, ReadSessionDep, RuntimeDep, SessionDep, TenantDep
from app.api.schemas.common import INT32_MAX
from app.api.schemas.datasets import DatasetItemPage, DatasetOut, DatasetPage
from app.services.requests import datasets
from app.services.requests.datasets import DatasetUpload

router = APIRouter(prefix="/v1/datasets", tags=["datasets"])
JSONL_TYPES = ("application/x-ndjson", "application/jsonl")
LINE = '{"id": "q1", "input": {"question": "2+2?"}, "expected": "4"}'

DATASET_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            kind: {
                "schema": {"type": "string", "description": "JSONL: one item a line"},
                "example": LINE,
            }
            for kind in JSONL_TYPES
        },
    }
}


@router.post("", status_code=201, response_model=DatasetOut, openapi_extra=DATASET_BODY)
async def upload_dataset(
    request: Request,
    response: Response,
    runtime: RuntimeDep,
    session: SessionDep,
    tenant: TenantDep,
    name: Annotated[str, Query(min_length=1, max_length=200)],
) -> DatasetOut:
    """Store a dataset of ``{"input": {...}, "expected": ...}`` lines (``id`` optional). The
    same content again answers 200 with the stored dataset; a bad line stores nothing."""
    check_media_type(request, JSONL_TYPES)
    settings = runtime.settings
    upload = DatasetUpload(
        name,
        BodyStream(request),
        max_line_bytes=settings.max_jsonl_line_bytes,
        max_items=settings.max_dataset_items,
        max_depth=settings.max_document_depth,
    )
    view, created = await datasets.upload(session, tenant, upload)
    if not created:
        response.status_code = 200
    return DatasetOut.model_validate(view).model_copy(update={"created": created})


@router.get("", response_model=DatasetPage)
async def list_datasets(
    session: ReadSessionDep,
    tenant: TenantDep,
    limit: PageLimit = 100,
    before: PageBefore = None,
) -> DatasetPage:
    """The tenant's datasets, newest first."""
    views, nxt = await datasets.listing(session, tenant, limit, before)
    return DatasetPage(items=[DatasetOut.model_validate(view) for view in views], next=nxt)


@router.get("/{dataset_id}", response_model=DatasetOut, response_model_exclude_none=True)
async def get_dataset(dataset_id: str, session: ReadSessionDep, tenant: TenantDep) -> DatasetOut:
    """A dataset's id, name, hash, item count and creation time."""
    return DatasetOut.model_validate(await datasets.find(session, tenant, dataset_id))


@router.get("/{dataset_id}/items", response_model=DatasetItemPage)
async def dataset_items(
    dataset_id: str,
    session: ReadSessionDep,
    tenant: TenantDep,
    after: Annotated[
        int, Query(ge=-1, le=INT32_MAX, description="return items after this index")
    ] = -1,
    limit: PageLimit = 100,
) -> DatasetItemPage:
    """Items in upload order, a page at a time."""
    page = await datasets.items_page(session, tenant, dataset_id, after, limit)
    return DatasetItemPage.model_validate(page)
