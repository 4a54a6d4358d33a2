"""``GET /v1/context/{request_id}`` (scope ``audit``): what a request returned, and whether it still holds."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from starlette.concurrency import run_in_threadpool

from api.deps import ServicesDep, require_scope
from api.keys import ApiKey
from api.schemas import ErrorOut, PackReplayOut

router = APIRouter(prefix="/v1", tags=["governance"])
AuditKey = Annotated[ApiKey, Depends(require_scope("audit"))]


@router.get(
    "/context/{request_id}", response_model=PackReplayOut,
    responses={s: {"model": ErrorOut} for s in (401, 403, 404)},
)
async def replay_context(request_id: str, key: AuditKey, services: ServicesDep) -> dict:
    """The request's principal, tokens and passages (ids, hashes, why visible), each re-checked against today's index."""
    from governance.packs import replay_report

    return await run_in_threadpool(replay_report, services.pack_store, services.store, request_id)
