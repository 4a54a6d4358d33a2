"""``GET /v1/documents/{doc_id}``: dereference a citation, ACL-checked (invisible = 404)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from api.deps import ContextKey, ServicesDep, principal_for
from api.schemas import DocumentOut, ErrorOut
from core.access import principal_tokens
from retrieval.documents import read_document

router = APIRouter(prefix="/v1", tags=["documents"])


@router.get(
    "/documents/{doc_id:path}",
    response_model=DocumentOut,
    responses={401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 404: {"model": ErrorOut}},
)
async def get_document(
    doc_id: str,
    key: ContextKey,
    services: ServicesDep,
    principal_id: Annotated[str, Query(alias="principal_id", min_length=1, max_length=256)],
    role: Annotated[list[str], Query(max_length=64)] = [],  # noqa: B006 - FastAPI query list
) -> dict:
    """The document's text for a principal (``?principal_id=alice&role=sales``)."""
    principal = principal_for(key, principal_id, role)
    view = await run_in_threadpool(read_document, services.store, doc_id, acl_tokens=principal_tokens(principal))
    return view.__dict__
