"""``POST /v1/feedback``: experts label what a context request returned (or name what it missed).
``POST /v1/tune`` (scope ``admin``): learn from the labels inside the serving process, which holds the store."""

from __future__ import annotations

import threading
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from api import reads
from api.audit import note
from api.deps import ContextKey, ServicesDep, principal_for, require_scope
from api.keys import ApiKey
from api.schemas import ErrorOut, FeedbackIn, FeedbackOut, TuneIn, TuneOut

router = APIRouter(prefix="/v1", tags=["governance"])
AdminKey = Annotated[ApiKey, Depends(require_scope("admin"))]
_TUNING = threading.Lock()  # one fit at a time per process: each reads and writes the same state


@router.post("/feedback", response_model=FeedbackOut, responses={s: {"model": ErrorOut} for s in (400, 401, 403, 404, 422)})
async def post_feedback(http: Request, body: FeedbackIn, key: ContextKey, services: ServicesDep) -> dict:
    """Mark passages relevant / not_relevant / wrong_entity, or a document as missing, for one request."""
    from governance.feedback import Label

    principal = principal_for(http, key, body.principal.id, body.principal.roles)
    note(http, feedback_for=body.request_id)
    labels = [Label(item.doc_id, item.label, item.entity_id, item.correct_entity_id) for item in body.labels]
    return await run_in_threadpool(
        lambda: reads.feedback_answer(services, principal, body.request_id, labels, key_id=key.key_id, note=body.note))


@router.post("/tune", response_model=TuneOut, responses={s: {"model": ErrorOut} for s in (401, 403, 422)})
async def post_tune(http: Request, body: TuneIn, key: AdminKey, services: ServicesDep) -> dict:
    """Apply pending entity corrections, refit on the labels, apply only if held-out nDCG@10 improves;
    this process's retrieval uses the new state at once."""
    from evaluation.feedback import run_tune

    note(http, action="tune", dry_run=body.dry_run)

    def fit() -> dict:
        with _TUNING:
            return run_tune(services, apply=not body.dry_run, actor=f"key:{key.key_id}")

    result = await run_in_threadpool(fit)
    note(http, applied=result["applied"], entity_ids=[c["entity_id"] for c in result["entity_corrections"]])
    return result


@router.post("/tune/corrections/{feedback_id}/revert", response_model=dict,
             responses={s: {"model": ErrorOut} for s in (400, 401, 403, 404)})
async def revert_correction_route(http: Request, feedback_id: int, key: AdminKey, services: ServicesDep) -> dict:
    """Undo one applied entity correction (its aliases go back to the entity they left)."""
    from evaluation.corrections import revert_correction

    note(http, action="entity_correction_revert", feedback_id=feedback_id)
    return await run_in_threadpool(
        lambda: revert_correction(services.feedback, services.entity_registry.store, services.store, feedback_id,
                                  settings=services.settings, actor=f"key:{key.key_id}"))
