"""``POST /v1/context`` and ``POST /v1/search``."""

from __future__ import annotations

from fastapi import APIRouter, Request

from api.audit import content_hash, note, query_hash
from api.deps import ContextKey, MetricsDep, ServicesDep, principal_for
from api.offload import offload
from api.reads import context_answer, filters_from, search_answer
from api.responses import JSONBytes, dumps
from api.schemas import ContextIn, ContextOut, ErrorOut, SearchIn, SearchOut
from api.services import Services
from retrieval.context import ContextRequest

router = APIRouter(prefix="/v1", tags=["context"])
_ERRORS = {s: {"model": ErrorOut} for s in (400, 401, 403, 413, 422)}


def _request(http: Request, body: ContextIn, key) -> ContextRequest:  # noqa: ANN001
    note(http, query_hash=query_hash(http, body.query))
    principal = principal_for(http, key, body.principal.id, body.principal.roles)
    return ContextRequest(body.query, principal, body.top_k, body.max_tokens, filters_from(body.filters),
                          min_relevance=body.min_relevance)


def _served(answer: dict, items: list[dict]) -> tuple[bytes, dict, dict]:
    """The response bytes, the audit fields of what was returned, and the stage timings; built in the
    request thread so the event loop only sends them."""
    audit = {"doc_ids": sorted({i["doc_id"] for i in items}),
             "chunk_ids": [c for i in items for c in (i["chunk_ids"] if "chunk_ids" in i else [i["chunk_id"]])],
             "content_hashes": [content_hash(i["text"]) for i in items]}
    return dumps(answer), audit, answer["timings_ms"]


def _context(services: Services, request: ContextRequest, key_id: str, request_id: str) -> tuple[bytes, dict, dict]:
    answer = context_answer(services, request, key_id=key_id, request_id=request_id)
    return _served(answer, answer["passages"])


def _search(services: Services, request: ContextRequest, request_id: str) -> tuple[bytes, dict, dict]:
    answer = search_answer(services, request, request_id=request_id)
    return _served(answer, answer["hits"])


@router.post("/context", response_model=ContextOut, responses=_ERRORS)
async def post_context(
    http: Request, body: ContextIn, key: ContextKey, services: ServicesDep, metrics: MetricsDep
) -> JSONBytes:
    """A token-budgeted, cited context pack of what the principal may see."""
    request = _request(http, body, key)
    content, audit, timings = await offload(http, _context, services, request, key.key_id, http.state.request_id)
    metrics.observe_stages(timings)
    note(http, **audit)
    return JSONBytes(content)


@router.post("/search", response_model=SearchOut, responses=_ERRORS)
async def post_search(
    http: Request, body: SearchIn, key: ContextKey, services: ServicesDep, metrics: MetricsDep
) -> JSONBytes:
    """Ranked chunk hits (for evaluations), same auth and filters as /v1/context."""
    request = _request(http, body, key)
    content, audit, timings = await offload(http, _search, services, request, http.state.request_id)
    metrics.observe_stages(timings)
    note(http, **audit)
    return JSONBytes(content)
