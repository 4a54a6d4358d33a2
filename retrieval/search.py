"""Hybrid search: dense + BM25 prefetches fused inside Qdrant, ACL filter in every prefetch.

Defaults were tuned on SciFact *train* queries (docs/retrieval.md); test queries were never used.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace

from core import payload as P
from core.config import Settings
from core.encoder import Encoder
from core.models import Hit, SearchFilters, SparseVector
from core.sparse import sparse_query_vector
from core.store.protocol import FusionKind, HybridQuery, PrefetchSpec, VectorStore
from governance.tuning import TuningState
from retrieval.fusion import fuse_documents
from retrieval.prf import DenseFeedback, Feedback, expand_query, rocchio


FILTERED_HNSW_EF = 768
# ACORN (2-hop exploration) only for filters leaving under 1 % of the collection and more points than exact
# scoring takes (EXACT_MAX_VISIBLE): collections above 6M chunks, not measured. At 1M (graph m 32) a role
# seeing 5 % (49,856 points) cost 177 ms of CPU per hybrid query with ACORN (the cut was 5 %), 35 ms with
# filtered HNSW and 28 ms scored exactly, all at dense recall 1.000 (docs/serving.md §5 "The ACORN band").
ACORN_MAX_SELECTIVITY = 0.01
# Dense prefetches whose ACL/filters leave at most this many points are scored exactly. At 1M chunks (m 32)
# a 5 % role (49,856 points) exactly: 28 ms of CPU per hybrid query and hybrid recall@10 1.000, by filtered
# HNSW 35 ms and 0.989 (the 500-deep prefetch walks a filtered graph); at 100k half the chunks (50,068)
# exactly: the same CPU as HNSW (11.3 vs 11.5 ms), hybrid recall 1.000 vs 0.978 (was 30,000 until then; ACORN
# at 10k visible cost 230 ms; docs/serving.md §5, `python -m bench.query`).
EXACT_MAX_VISIBLE = 60_000
# The wide beam only where it is needed: a filter leaving half of 100k chunks needs ef 768 for recall 0.99,
# one leaving 10 % of 1M reaches 1.000 with the engine's beam, which is at least the prefetch depth (500),
# while ef 768 doubles its dense search (17 → 10 ms; docs/serving.md §5).
HNSW_EF_MIN_SHARE = 0.25


@dataclass(frozen=True)
class SearchPlan:
    """How to search: which prefetches, how deep, how fused, whether to rerank."""

    mode: str = "hybrid"  # hybrid | dense | sparse
    prefetch_limit: int = 500  # = Settings.prefetch_limit; why 500: README "Retrieval quality" → Results
    fusion: FusionKind = "dbsf"  # SciFact train nDCG@10: DBSF 0.740, best RRF (k=2, weights 1:1.5) 0.730
    rrf_k: int = 2
    weights: tuple[float, float] | None = None  # (dense, sparse) RRF weights; None = equal
    entity_weight: float = 1.0  # RRF weight of the prefetch narrowed to the query's entities
    rerank_depth: int = 30  # hits a reranker (when configured) re-scores
    exact: bool = False
    # Filtered-HNSW recall under ACL filters (docs/serving.md §5, `python -m bench.query`): the beam width
    # of every dense prefetch and ACORN (2-hop exploration) for filters that hide most of the collection.
    hnsw_ef: int | None = FILTERED_HNSW_EF
    acorn: bool = True
    acorn_max_selectivity: float | None = ACORN_MAX_SELECTIVITY
    exact_max_visible: int | None = EXACT_MAX_VISIBLE  # exact scoring when a filter leaves this few points
    hnsw_ef_min_share: float | None = HNSW_EF_MIN_SHARE  # hnsw_ef only when a filter leaves this share or more
    feedback: Feedback | None = None  # RM3 on the BM25 side (retrieval/prf.py): one more store query
    # Rocchio on the query vector (one more query). Off by default: SciFact test +0.0003 nDCG@10 (noise),
    # held-out enterprise seed 8 cross-system R@10 1.000 -> 0.982 (seed 9 equal), and twice the store time.
    dense_feedback: DenseFeedback | None = None
    doc_fusion: float = 0.0  # document score = best chunk + this × its other chunks (retrieval/fusion.py)

    def __post_init__(self) -> None:
        if self.mode not in ("hybrid", "dense", "sparse"):
            raise ValueError(f"SearchPlan.mode must be hybrid, dense or sparse, not {self.mode!r}")
        if self.weights is not None and len(self.weights) != 2:
            raise ValueError(f"SearchPlan.weights is (dense, sparse), got {self.weights!r}")

    @classmethod
    def from_settings(cls, settings: Settings) -> "SearchPlan":
        """The deployment's plan: depth and RRF constant from settings, the rest tuned defaults."""
        return cls(prefetch_limit=settings.prefetch_limit, rrf_k=settings.rrf_k, fusion=settings.fusion)

    def query(self, prefetches: Sequence[PrefetchSpec], *, limit: int,
              weights: tuple[float, ...] | None = None, with_dense_score: bool = False) -> HybridQuery:
        """A store query of ``prefetches`` with this plan's fusion and search parameters (beam, ACORN,
        exact scoring), so every query of a request searches the way the plan says; ``with_dense_score``:
        hits come with their exact dense cosine (``Hit.dense_score``, for retrieval/relevance.py)."""
        return HybridQuery(
            tuple(prefetches), limit=limit, fusion=self.fusion, rrf_k=self.rrf_k, weights=weights, exact=self.exact,
            hnsw_ef=self.hnsw_ef, acorn=self.acorn, acorn_max_selectivity=self.acorn_max_selectivity,
            exact_max_visible=self.exact_max_visible, hnsw_ef_min_share=self.hnsw_ef_min_share,
            with_dense_score=with_dense_score,
        )

    def tuned(self, state: TuningState | None) -> "SearchPlan":
        """This plan with what feedback tuning learned (``stitch tune``) laid over it."""
        if state is None:
            return self
        learned = {k: getattr(state, k) for k in ("fusion", "prefetch_limit", "entity_weight")}
        return replace(self, **{k: v for k, v in learned.items() if v is not None})


@dataclass(frozen=True)
class QueryVectors:
    """The query encoded once, reused by every prefetch."""

    dense: tuple[float, ...]
    sparse: SparseVector


def encode_query(encoder: Encoder, text: str) -> QueryVectors:
    """Dense and sparse vectors of a query."""
    return QueryVectors(tuple(encoder.encode_query(text).tolist()), sparse_query_vector(text))


def start_encoding(encoder: Encoder, text: str) -> Callable[[], QueryVectors]:
    """``encode_query`` started now and finished when the result is called: with an encoder that can
    encode in the background (core.batching), the caller's work in between overlaps the model call."""
    submit = getattr(encoder, "submit_query", None)
    if submit is None:
        vectors = encode_query(encoder, text)
        return lambda: vectors
    dense = submit(text)
    return lambda: QueryVectors(tuple(dense().tolist()), sparse_query_vector(text))


def _prefetches(
    vectors: QueryVectors, plan: SearchPlan, depth: int, entity_ids: tuple[str, ...]
) -> tuple[list[PrefetchSpec], list[float]]:
    dense_w, sparse_w = plan.weights or (1.0, 1.0)
    specs: list[PrefetchSpec] = []
    weights: list[float] = []
    if plan.mode in ("hybrid", "dense"):
        specs.append(PrefetchSpec(P.DENSE, vectors.dense, depth))
        weights.append(dense_w)
    if plan.mode in ("hybrid", "sparse") and vectors.sparse.indices:
        specs.append(PrefetchSpec(P.SPARSE, vectors.sparse, depth))
        weights.append(sparse_w)
    if entity_ids and plan.mode == "hybrid":
        # Dense and sparse, as for the whole collection: a chunk about the query's entity then gets as many
        # fused contributions as a boilerplate twin about another customer, whichever system it came from.
        specs.append(PrefetchSpec(P.DENSE, vectors.dense, depth, entity_ids=entity_ids))
        weights.append(plan.entity_weight)
        if vectors.sparse.indices:
            specs.append(PrefetchSpec(P.SPARSE, vectors.sparse, depth, entity_ids=entity_ids))
            weights.append(plan.entity_weight)
    return specs, weights


def search_chunks(
    store: VectorStore, vectors: QueryVectors, *, acl_tokens: Collection[str], limit: int,
    plan: SearchPlan = SearchPlan(), filters: SearchFilters | None = None,
    entity_ids: tuple[str, ...] = (), dense_scores: bool = False,
) -> list[Hit]:
    """Ranked chunk hits visible to ``acl_tokens``; ``entity_ids`` add a prefetch narrowed to those entities;
    ``dense_scores``: each hit comes with its exact dense cosine to the query (``Hit.dense_score``)."""
    def run(query_vectors: QueryVectors, n: int, scored: bool = False) -> list[Hit]:
        return _fused_query(store, query_vectors, plan, n, acl_tokens, filters, entity_ids, scored)

    moved = vectors
    if (plan.feedback and plan.mode != "dense") or (plan.dense_feedback and plan.mode != "sparse"):
        moved = _feedback_vectors(store, vectors, plan, run, acl_tokens)
    # the cosines are the caller's query's: a dense vector moved by feedback is not what relevance measures
    return fuse_documents(run(moved, limit, dense_scores and moved.dense == vectors.dense), plan.doc_fusion)


def _feedback_vectors(
    store: VectorStore, vectors: QueryVectors, plan: SearchPlan, run: Callable[[QueryVectors, int], list[Hit]],
    acl_tokens: Collection[str],
) -> QueryVectors:
    """The query moved towards the first pass's top hits: RM3 terms on BM25, Rocchio on the dense vector.
    The first pass is ACL-filtered like any query, so feedback never comes from text the caller cannot see."""
    sparse_fb = plan.feedback if plan.mode != "dense" and vectors.sparse.indices else None
    dense_fb = plan.dense_feedback if plan.mode != "sparse" else None
    depths = ([sparse_fb.docs, sparse_fb.background] if sparse_fb else []) + ([dense_fb.docs] if dense_fb else [])
    first = run(vectors, max(depths)) if depths else []
    if sparse_fb and first:
        vectors = replace(vectors, sparse=expand_query(vectors.sparse, first, sparse_fb))
    if dense_fb and first:
        top = [h.point_id for h in first[: dense_fb.docs]]
        stored = store.dense_vectors(top, acl_tokens=acl_tokens)
        vectors = replace(vectors, dense=rocchio(vectors.dense, [stored[i] for i in top if i in stored], dense_fb.weight))
    return vectors


def _fused_query(
    store: VectorStore, vectors: QueryVectors, plan: SearchPlan, limit: int, acl_tokens: Collection[str],
    filters: SearchFilters | None, entity_ids: tuple[str, ...], dense_scores: bool = False,
) -> list[Hit]:
    fused = plan.mode == "hybrid"
    # Fusion returns up to the union of its prefetches, so each need not be as deep as ``limit``.
    depth = max(plan.prefetch_limit, -(-limit // 2) if fused else limit)
    specs, weights = _prefetches(vectors, plan, depth, entity_ids)
    if not specs:
        return []
    uniform = all(w == 1.0 for w in weights)
    query = plan.query(specs, limit=limit, weights=None if uniform else tuple(weights), with_dense_score=dense_scores)
    return store.search(query, acl_tokens=acl_tokens, filters=filters)


def apply_source_priors(hits: list[Hit], priors: dict[str, float]) -> list[Hit]:
    """Re-rank hits by score × the learned prior of their source (1.0 for sources without one)."""
    if not priors:
        return hits
    scored = [replace(h, score=h.score * priors.get(h.payload.get(P.SOURCE, ""), 1.0)) for h in hits]
    return sorted(scored, key=lambda h: h.score, reverse=True)
