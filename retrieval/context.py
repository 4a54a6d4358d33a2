"""The context request, end to end: encode → hybrid search (ACL in Qdrant) → stitch → dedupe → pack."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

from core.access import principal_tokens
from core.config import Settings
from core.encoder import Encoder
from core.entities import QueryEntityResolver
from core.models import ContextPack, Hit, Principal, SearchFilters
from core.store.protocol import VectorStore
from retrieval.pack import drop_duplicates, pack_passages
from retrieval.search import SearchPlan, encode_query, search_chunks
from retrieval.stitch import stitch_hits


@dataclass(frozen=True)
class ContextRequest:
    """What the orchestration layer asks for."""

    query: str
    principal: Principal
    top_k: int = 8
    max_tokens: int = 2000
    filters: SearchFilters = field(default_factory=SearchFilters)


@dataclass
class Retriever:
    """Long-lived retrieval services (model and store loaded once, shared by requests)."""

    settings: Settings
    encoder: Encoder
    store: VectorStore
    plan: SearchPlan = field(default_factory=SearchPlan)
    entity_resolver: QueryEntityResolver | None = None

    def search(self, request: ContextRequest, *, limit: int | None = None) -> tuple[list[Hit], dict]:
        """Ranked chunk hits for a request (``/v1/search``), plus stage timings in ms."""
        tokens = principal_tokens(request.principal)
        t0 = time.perf_counter()
        vectors = encode_query(self.encoder, request.query)
        t1 = time.perf_counter()
        hits = search_chunks(
            self.store, vectors, acl_tokens=tokens, limit=limit or request.top_k,
            plan=self.plan, filters=request.filters,
        )
        t2 = time.perf_counter()
        return hits, {"embed": _ms(t1 - t0), "search": _ms(t2 - t1)}

    def context(self, request: ContextRequest) -> ContextPack:
        """The token-budgeted, cited context pack for one request."""
        started = time.perf_counter()
        tokens = principal_tokens(request.principal)
        # Search deeper than top_k: stitching merges hits and dedupe drops some.
        hits, timings = self.search(request, limit=max(request.top_k * 3, 20))
        t_assemble = time.perf_counter()
        spans = stitch_hits(hits, self.store, acl_tokens=tokens, window=self.settings.neighbour_window)
        spans = drop_duplicates(spans)
        packed = pack_passages(spans, top_k=request.top_k, max_tokens=request.max_tokens)
        done = time.perf_counter()
        timings.update(rerank=0.0, assemble=_ms(done - t_assemble), total=_ms(done - started))
        return ContextPack(
            request_id=uuid.uuid4().hex,
            context=packed.context,
            passages=packed.passages,
            citations=packed.citations,
            tokens=packed.tokens,
            truncated=packed.truncated,
            timings_ms=timings,
        )


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)
