"""The read operations behind both doors: each REST route and its MCP tool call the same function here,
so what a route returns, a tool returns (ARCHITECTURE). Each one calls one library function and shapes
its result with api.render."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, time, timezone

from api.render import context_pack_json, search_hits_json
from api.schemas import FiltersIn
from api.services import Services
from core.access import principal_tokens
from core.models import Principal, SearchFilters
from retrieval.context import ContextRequest


def filters_from(body: FiltersIn) -> SearchFilters:
    """The caller's narrowing as the library takes it (a bare date means midnight UTC)."""
    after = body.updated_after
    if isinstance(after, date) and not isinstance(after, datetime):
        after = datetime.combine(after, time.min, tzinfo=timezone.utc)
    elif isinstance(after, datetime) and after.tzinfo is None:
        after = after.replace(tzinfo=timezone.utc)
    return SearchFilters(tuple(body.sources), tuple(body.entity_ids), after)


def filtered_for(principal: Principal) -> dict:
    """Whom a result was filtered for: the principal, its roles and the ACL tokens that went into the query."""
    return {"principal_id": principal.id, "roles": list(principal.roles), "acl_tokens": list(principal_tokens(principal))}


def _iso(epoch: float | None) -> str | None:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="seconds") if epoch else None


def context_answer(services: Services, request: ContextRequest, *, key_id: str, request_id: str | None = None) -> dict:
    """``POST /v1/context`` / MCP ``get_context``: the pack (recorded for replay), plus when each cited
    document was indexed (``index_as_of`` = the newest of them) and whom the pack was filtered for."""
    from governance.packs import record_for

    pack = services.retriever.context(request)
    if request_id:
        pack = replace(pack, request_id=request_id)
    services.pack_store.record(record_for(pack, key_id=key_id, principal_id=request.principal.id,
                                          roles=request.principal.roles, query=request.query))
    body = context_pack_json(pack)
    indexed = services.ledger.indexed_at(sorted({c.doc_id for c in pack.citations}))
    for citation in body["citations"]:
        citation["indexed_at"] = _iso(indexed.get(citation["doc_id"]))
    body["index_as_of"] = _iso(max(indexed.values(), default=None))
    body["filtered_for"] = filtered_for(request.principal)
    return body


def search_answer(services: Services, request: ContextRequest, *, request_id: str) -> dict:
    """``POST /v1/search`` / MCP ``search``: ranked chunk hits and stage timings."""
    hits, timings = services.retriever.search(request)
    return {"request_id": request_id, "hits": search_hits_json(hits), "timings_ms": timings,
            "filtered_for": filtered_for(request.principal)}


def document_answer(services: Services, doc_id: str, principal: Principal) -> dict:
    """``GET /v1/documents/{id}`` / MCP ``read_document``: the text, or NotFoundError (hidden = missing)."""
    from retrieval.documents import read_document

    view = read_document(services.store, doc_id, acl_tokens=principal_tokens(principal))
    return dict(view.__dict__)


def entities_answer(services: Services, principal: Principal, *, query: str, limit: int) -> dict:
    """``GET /v1/entities`` / MCP ``find_entities``: entities whose visible aliases contain ``query``."""
    from entity_resolution.views import list_entities

    views = list_entities(services.entity_registry.store, query=query, acl_tokens=principal_tokens(principal),
                          limit=limit)
    return {"entities": [v.to_dict() for v in views]}


def entity_answer(services: Services, entity_id: str, principal: Principal) -> dict:
    """``GET /v1/entities/{id}`` / MCP ``show_entity``: one entity through visible documents, else NotFoundError."""
    from entity_resolution.views import entity_view

    view = entity_view(services.entity_registry.store, entity_id, acl_tokens=principal_tokens(principal))
    return view.to_dict()


def feedback_answer(services: Services, principal: Principal, request_id: str, labels: list, *, key_id: str,
                    note: str = "") -> dict:
    """``POST /v1/feedback`` / the console's feedback form: labels stored for the request's own principal,
    on documents (and entities) it can see (``governance.feedback.Label`` items)."""
    from evaluation.corrections import RegistryNames
    from governance.feedback import submit_feedback

    stored = submit_feedback(
        services.pack_store, services.feedback, services.store, request_id=request_id, principal_id=principal.id,
        acl_tokens=principal_tokens(principal), labels=labels, key_id=key_id, note=note,
        entities=RegistryNames(services.entity_registry.store))
    return {"request_id": request_id, "stored": stored}
