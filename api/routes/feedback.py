"""``POST /v1/feedback``: experts label what a context request returned (or name what it missed)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from api.audit import note
from api.deps import ContextKey, ServicesDep, principal_for
from api.schemas import ErrorOut, FeedbackIn, FeedbackOut
from core.access import principal_tokens

router = APIRouter(prefix="/v1", tags=["governance"])


@router.post("/feedback", response_model=FeedbackOut, responses={s: {"model": ErrorOut} for s in (400, 401, 403, 404, 422)})
async def post_feedback(http: Request, body: FeedbackIn, key: ContextKey, services: ServicesDep) -> dict:
    """Mark passages relevant / not_relevant / wrong_entity, or a document as missing, for one request."""
    from governance.feedback import Label, submit_feedback

    principal = principal_for(http, key, body.principal.id, body.principal.roles)
    note(http, feedback_for=body.request_id)
    labels = [Label(item.doc_id, item.label, item.entity_id) for item in body.labels]
    stored = await run_in_threadpool(
        lambda: submit_feedback(
            services.pack_store, services.feedback, services.store, request_id=body.request_id,
            principal_id=principal.id, acl_tokens=principal_tokens(principal), labels=labels,
            key_id=key.key_id, note=body.note,
        )
    )
    return {"request_id": body.request_id, "stored": stored}
