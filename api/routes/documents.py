"""``GET /v1/documents/{doc_id}``: dereference a citation, ACL-checked (invisible = 404)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from api.audit import content_hash, note
from api.deps import ContextKey, PrincipalId, Roles, ServicesDep, principal_for
from api.schemas import DocumentOut, ErrorOut
from core.access import principal_tokens
from retrieval.documents import read_document

router = APIRouter(prefix="/v1", tags=["documents"])


@router.get(
    "/documents/{doc_id:path}",
    response_model=DocumentOut,
    responses={s: {"model": ErrorOut} for s in (401, 403, 404, 422)},
)
async def get_document(
    http: Request,
    doc_id: Annotated[str, "a doc id from a citation, e.g. wiki:company-handbook.md"],
    key: ContextKey,
    services: ServicesDep,
    principal_id: PrincipalId = None,
    role: Roles = [],  # noqa: B006 - FastAPI query list
) -> dict:
    """The document's text for a principal (``?principal_id=alice&role=sales``); hidden and absent look alike."""
    note(http, requested_doc_id=doc_id[:512])
    principal = principal_for(http, key, principal_id, role)
    view = await run_in_threadpool(read_document, services.store, doc_id, acl_tokens=principal_tokens(principal))
    note(http, doc_ids=[view.doc_id], content_hashes=[content_hash(view.text)])
    return view.__dict__
