"""The context request, end to end: understand the query → hybrid search (ACL in Qdrant) →
rerank → dedupe → select → stitch neighbours → pack to budget → cite."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone

from core import payload as P
from core.access import principal_tokens
from core.config import Settings
from core.encoder import Encoder
from core.entities import QueryEntityResolver
from core.models import ContextPack, EntityRef, Hit, Principal, SearchFilters
from core.store.protocol import VectorStore
from governance.packs import visible_via
from governance.redaction import redact_hit, redact_passage
from retrieval.diversity import entity_coverage, reserve_systems
from retrieval.filters import check_filters
from retrieval.pack import Packed, drop_duplicates, pack_passages, render_within, select_spans
from retrieval.rerank import Reranker, load_reranker, rerank_hits
from retrieval.relevance import hit_relevance
from retrieval.search import QueryVectors, SearchPlan, apply_source_priors, search_chunks, start_encoding
from retrieval.stitch import merge_hits, widen_spans


@dataclass(frozen=True)
class ContextRequest:
    """What the orchestration layer asks for."""

    query: str
    principal: Principal
    top_k: int = 8
    max_tokens: int = 2000
    filters: SearchFilters = field(default_factory=SearchFilters)
    min_relevance: float | None = None  # drop hits below this relevance (retrieval/relevance.py): maybe nothing


@dataclass(frozen=True)
class SearchResult:
    """Ranked chunk hits, the entities the query mentioned, and stage timings (ms)."""

    hits: list[Hit]
    entities: tuple[EntityRef, ...]
    timings_ms: dict
    vectors: QueryVectors | None = None


@dataclass
class Retriever:
    """Long-lived retrieval services (model and store loaded once, shared by requests)."""

    settings: Settings
    encoder: Encoder
    store: VectorStore
    plan: SearchPlan | None = None  # None: SearchPlan.from_settings(settings)
    entity_resolver: QueryEntityResolver | None = None
    reranker: Reranker | None = None  # None: the settings' cross-encoder, if one is configured
    source_priors: dict[str, float] = field(default_factory=dict)  # learned from feedback (stitch tune)

    def __post_init__(self) -> None:
        if self.plan is None:
            self.plan = SearchPlan.from_settings(self.settings)
        if self.reranker is None:
            self.reranker = load_reranker(self.settings)

    def run_search(self, request: ContextRequest, *, limit: int, dense_scores: bool = False) -> SearchResult:
        """Entities in the query, hybrid search with an entity prefetch, optional rerank; ``dense_scores``:
        the fused hits come with their exact dense cosine, which their relevance is measured by."""
        tokens = principal_tokens(request.principal)
        check_filters(self.store, request.filters, acl_tokens=tokens)
        t0 = time.perf_counter()
        encoded = start_encoding(self.encoder, request.query)  # the model runs while the entities are looked up
        entities = self._entities(request.query, tokens)
        entity_ids = tuple(dict.fromkeys(e.entity_id for e in entities))
        vectors = encoded()
        t1 = time.perf_counter()
        hits = search_chunks(
            self.store, vectors, acl_tokens=tokens, limit=limit, plan=self.plan, filters=request.filters,
            entity_ids=entity_ids, dense_scores=dense_scores,
        )
        hits = apply_source_priors(hits, self.source_priors)
        t2 = time.perf_counter()
        if self.reranker is not None:
            hits = rerank_hits(self.reranker, request.query, hits, depth=self.plan.rerank_depth)
        t3 = time.perf_counter()
        hits = self._diversified(request, hits, vectors, entity_ids, tokens)
        timings = {"embed": _ms(t1 - t0), "search": _ms(t2 - t1), "rerank": _ms(t3 - t2)}
        return SearchResult(hits, entities, timings, vectors)

    def search(self, request: ContextRequest, *, limit: int | None = None) -> tuple[list[Hit], dict]:
        """Ranked chunk hits for a request (``/v1/search``), text as the principal may see it, plus timings."""
        result = self.run_search(request, limit=limit or request.top_k, dense_scores=request.min_relevance is not None)
        tokens = principal_tokens(request.principal)
        hits = result.hits
        if request.min_relevance is not None:
            relevance = hit_relevance(self.store, result.vectors, [redact_hit(h, tokens) for h in hits],
                                      acl_tokens=tokens)
            hits = [h for h in hits if relevance[h.point_id] >= request.min_relevance]
        return [redact_hit(h, tokens) for h in hits], result.timings_ms

    def context(self, request: ContextRequest) -> ContextPack:
        """The token-budgeted, cited context pack for one request."""
        started = time.perf_counter()
        tokens = principal_tokens(request.principal)
        # Search deeper than top_k: merging hits of one document and dedupe shrink the list.
        result = self.run_search(request, limit=max(request.top_k * 3, 20), dense_scores=True)
        t_assemble = time.perf_counter()
        # relevance is computed on the text as this principal may see it (redacted values do not count)
        relevance = hit_relevance(self.store, result.vectors, [redact_hit(h, tokens) for h in result.hits],
                                  acl_tokens=tokens)
        hits = [h for h in result.hits if relevance[h.point_id] >= (request.min_relevance or 0.0)]
        spans = drop_duplicates(merge_hits(hits))
        spans = select_spans(spans, top_k=request.top_k, max_tokens=request.max_tokens)
        spans = widen_spans(spans, self.store, acl_tokens=tokens, window=self.settings.neighbour_window)
        packed = pack_passages(spans, top_k=request.top_k, max_tokens=request.max_tokens)
        packed = _as_served(packed, spans, tokens, relevance, max_tokens=request.max_tokens)
        passages = packed.passages
        best = max((p.relevance for p in passages), default=None)
        done = time.perf_counter()
        timings = dict(result.timings_ms, assemble=_ms(done - t_assemble), total=_ms(done - started))
        return ContextPack(
            request_id=uuid.uuid4().hex,
            context=packed.context,
            passages=passages,
            citations=packed.citations,
            entities=result.entities,
            tokens=packed.tokens,
            truncated=packed.truncated,
            timings_ms=timings,
            acl_tokens=tokens,
            model=self.encoder.name,
            generated_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            redactions=sum(p.redactions for p in packed.passages),
            relevance=best,
            weak=best is None or best < self.settings.weak_relevance,
        )

    def _diversified(self, request: ContextRequest, hits: list[Hit], vectors: QueryVectors,
                     entity_ids: tuple[str, ...], tokens: tuple[str, ...]) -> list[Hit]:
        """Each visible system's best passage about the query's entities among the first ``top_k`` hits."""
        if not entity_ids or self.plan.mode != "hybrid":
            return hits
        coverage = entity_coverage(self.store, vectors, acl_tokens=tokens, entity_ids=entity_ids,
                                   plan=self.plan, filters=request.filters)
        return reserve_systems(hits, coverage, entity_ids=entity_ids, window=request.top_k,
                               slots=max(1, request.top_k // 2))

    def _entities(self, query: str, tokens: tuple[str, ...]) -> tuple[EntityRef, ...]:
        if self.entity_resolver is None:
            return ()
        return tuple(self.entity_resolver.entities_in_query(query, acl_tokens=tokens))


def _as_served(packed: Packed, spans: list, tokens: tuple[str, ...], relevance: dict[str, float], *,
               max_tokens: int) -> Packed:
    """Passages as this principal may see them: why each was visible, values the policy hides replaced,
    and how relevant each is (its best chunk's relevance)."""
    first = {s.doc_id: s.chunks[0].payload for s in spans}
    served = []
    for passage in packed.passages:
        payload = first.get(passage.doc_id, {})
        passage = replace(passage, visible_via=visible_via(payload.get(P.ACL) or (), tokens),
                          acl_origin=payload.get(P.ACL_ORIGIN) or "",
                          relevance=max((relevance.get(c, 0.0) for c in passage.chunk_ids), default=0.0))
        served.append(redact_passage(passage, payload.get(P.REDACT), tokens))
    if not any(p.redactions for p in served):
        return replace(packed, passages=tuple(served))
    return render_within(served, max_tokens=max_tokens, truncated=packed.truncated)


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)
