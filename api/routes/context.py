"""``POST /v1/context`` and ``POST /v1/search``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from api.audit import content_hash, note, query_hash
from api.deps import ContextKey, MetricsDep, ServicesDep, principal_for
from api.reads import context_answer, filters_from, search_answer
from api.schemas import ContextIn, ContextOut, ErrorOut, SearchIn, SearchOut
from retrieval.context import ContextRequest

router = APIRouter(prefix="/v1", tags=["context"])
_ERRORS = {s: {"model": ErrorOut} for s in (400, 401, 403, 413, 422)}


def _request(http: Request, body: ContextIn, key) -> ContextRequest:  # noqa: ANN001
    note(http, query_hash=query_hash(http, body.query))
    principal = principal_for(http, key, body.principal.id, body.principal.roles)
    return ContextRequest(body.query, principal, body.top_k, body.max_tokens, filters_from(body.filters),
                          min_relevance=body.min_relevance)


@router.post("/context", response_model=ContextOut, responses=_ERRORS)
async def post_context(
    http: Request, body: ContextIn, key: ContextKey, services: ServicesDep, metrics: MetricsDep
) -> dict:
    """A token-budgeted, cited context pack of what the principal may see."""
    request = _request(http, body, key)
    answer = await run_in_threadpool(context_answer, services, request, key_id=key.key_id,
                                     request_id=http.state.request_id)
    metrics.observe_stages(answer["timings_ms"])
    note(http, doc_ids=sorted({p["doc_id"] for p in answer["passages"]}),
         chunk_ids=[c for p in answer["passages"] for c in p["chunk_ids"]],
         content_hashes=[content_hash(p["text"]) for p in answer["passages"]])
    return answer


@router.post("/search", response_model=SearchOut, responses=_ERRORS)
async def post_search(
    http: Request, body: SearchIn, key: ContextKey, services: ServicesDep, metrics: MetricsDep
) -> dict:
    """Ranked chunk hits (for evaluations), same auth and filters as /v1/context."""
    request = _request(http, body, key)
    answer = await run_in_threadpool(search_answer, services, request, request_id=http.state.request_id)
    metrics.observe_stages(answer["timings_ms"])
    note(http, doc_ids=sorted({h["doc_id"] for h in answer["hits"]}), chunk_ids=[h["chunk_id"] for h in answer["hits"]],
         content_hashes=[content_hash(h["text"]) for h in answer["hits"]])
    return answer
