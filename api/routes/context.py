"""``POST /v1/context`` and ``POST /v1/search``."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time, timezone

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from api.deps import ContextKey, ServicesDep, principal_for
from api.render import context_pack_json, search_hits_json
from api.schemas import ContextIn, ContextOut, ErrorOut, FiltersIn, SearchIn, SearchOut
from core.models import SearchFilters
from retrieval.context import ContextRequest

router = APIRouter(prefix="/v1", tags=["context"])
_ERRORS = {401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 422: {"model": ErrorOut}}


def _filters(body: FiltersIn) -> SearchFilters:
    after = body.updated_after
    if isinstance(after, date) and not isinstance(after, datetime):
        after = datetime.combine(after, time.min, tzinfo=timezone.utc)
    return SearchFilters(tuple(body.sources), tuple(body.entity_ids), after)


def _request(body: ContextIn, key) -> ContextRequest:  # noqa: ANN001
    principal = principal_for(key, body.principal.id, body.principal.roles)
    return ContextRequest(body.query, principal, body.top_k, body.max_tokens, _filters(body.filters))


@router.post("/context", response_model=ContextOut, responses=_ERRORS)
async def post_context(body: ContextIn, key: ContextKey, services: ServicesDep) -> dict:
    """A token-budgeted, cited context pack the principal may see."""
    request = _request(body, key)
    pack = await run_in_threadpool(services.retriever.context, request)
    return context_pack_json(pack)


@router.post("/search", response_model=SearchOut, responses=_ERRORS)
async def post_search(body: SearchIn, key: ContextKey, services: ServicesDep) -> dict:
    """Ranked chunk hits (for evaluations), same auth and filters as /v1/context."""
    request = _request(body, key)
    hits, timings = await run_in_threadpool(services.retriever.search, request)
    return {"request_id": uuid.uuid4().hex, "hits": search_hits_json(hits), "timings_ms": timings}
