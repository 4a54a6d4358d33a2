"""``POST /v1/context`` and ``POST /v1/search``."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, time, timezone

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from api.audit import content_hash, note, query_hash
from api.deps import ContextKey, MetricsDep, ServicesDep, principal_for
from api.render import context_pack_json, search_hits_json
from api.schemas import ContextIn, ContextOut, ErrorOut, FiltersIn, SearchIn, SearchOut
from core.models import SearchFilters
from governance.packs import record_for
from retrieval.context import ContextRequest

router = APIRouter(prefix="/v1", tags=["context"])
_ERRORS = {s: {"model": ErrorOut} for s in (400, 401, 403, 413, 422)}


def _filters(body: FiltersIn) -> SearchFilters:
    after = body.updated_after
    if isinstance(after, date) and not isinstance(after, datetime):
        after = datetime.combine(after, time.min, tzinfo=timezone.utc)
    elif isinstance(after, datetime) and after.tzinfo is None:
        after = after.replace(tzinfo=timezone.utc)
    return SearchFilters(tuple(body.sources), tuple(body.entity_ids), after)


def _request(http: Request, body: ContextIn, key) -> ContextRequest:  # noqa: ANN001
    note(http, query_hash=query_hash(http, body.query))
    principal = principal_for(http, key, body.principal.id, body.principal.roles)
    return ContextRequest(body.query, principal, body.top_k, body.max_tokens, _filters(body.filters),
                          min_relevance=body.min_relevance)


@router.post("/context", response_model=ContextOut, responses=_ERRORS)
async def post_context(
    http: Request, body: ContextIn, key: ContextKey, services: ServicesDep, metrics: MetricsDep
) -> dict:
    """A token-budgeted, cited context pack of what the principal may see."""
    request = _request(http, body, key)
    pack = await run_in_threadpool(services.retriever.context, request)
    pack = replace(pack, request_id=http.state.request_id)
    record = record_for(pack, key_id=key.key_id, principal_id=request.principal.id,
                        roles=request.principal.roles, query=request.query)
    services.pack_store.record(record)  # a queue put: the writer thread commits it
    metrics.observe_stages(pack.timings_ms)
    note(http, doc_ids=sorted({p.doc_id for p in pack.passages}),
         chunk_ids=[c for p in pack.passages for c in p.chunk_ids], content_hashes=[content_hash(p.text) for p in pack.passages])
    return context_pack_json(pack)


@router.post("/search", response_model=SearchOut, responses=_ERRORS)
async def post_search(
    http: Request, body: SearchIn, key: ContextKey, services: ServicesDep, metrics: MetricsDep
) -> dict:
    """Ranked chunk hits (for evaluations), same auth and filters as /v1/context."""
    request = _request(http, body, key)
    hits, timings = await run_in_threadpool(services.retriever.search, request)
    metrics.observe_stages(timings)
    rendered = search_hits_json(hits)
    note(http, doc_ids=sorted({h["doc_id"] for h in rendered}), chunk_ids=[h["chunk_id"] for h in rendered],
         content_hashes=[content_hash(h["text"]) for h in rendered])
    return {"request_id": http.state.request_id, "hits": rendered, "timings_ms": timings}
