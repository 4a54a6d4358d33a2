"""How relevant each hit is, on one scale for every query: fused scores (DBSF/RRF) only order one
query's hits, so they cannot say "nothing here matches" (``🙂🙂`` or ``the of and`` still get 8
passages). Relevance is the larger of the chunk's dense cosine similarity to the query (MiniLM
vectors are normalised, so it is comparable across queries) and 0.6 × the share of the query's BM25
terms (stemmed, stopwords removed) the chunk contains, so an exact identifier match ("T-5003") is
not lost when its cosine is low; the result lies in [0, 1].

Calibration (packaged MiniLM, fixture corpus, measured 2026-12-01): the best cosine of 46 real
questions was 0.46-0.85, of 8 nonsense queries (emoji, stopwords only, "banana smoothie recipe",
"lorem ipsum …") 0.14-0.22; ``Settings.weak_relevance`` = 0.3 sits between the two.
"""

from __future__ import annotations

from collections.abc import Collection

from core import payload as P
from core.models import Hit
from core.sparse import sparse_document_vector
from core.store.protocol import VectorStore
from retrieval.search import QueryVectors

LEXICAL_WEIGHT = 0.6


def _term_share(query_terms: frozenset[int], payload: dict) -> float:
    """Share of the query's terms in the chunk text: the term ids stored at ingest, else (a store
    written by 0.3.0, or text changed by redaction) the text's own BM25 terms."""
    if not query_terms:
        return 0.0
    terms = payload.get(P.TERMS)
    if terms is None:
        terms = sparse_document_vector(payload.get(P.TEXT, "")).indices
    return len(query_terms.intersection(terms)) / len(query_terms)


def hit_relevance(
    store: VectorStore, vectors: QueryVectors, hits: list[Hit], *, acl_tokens: Collection[str],
) -> dict[str, float]:
    """Relevance in [0, 1] per hit point id: the store scores exactly these hits against the query's dense
    vector (one id-restricted, ACL-filtered query), so every hit gets its own cosine; hits that came with
    one from the fused query (``Hit.dense_score``) are not asked again."""
    if not hits:
        return {}
    cosine = {h.point_id: h.dense_score for h in hits if h.dense_score is not None}
    unscored = [h.point_id for h in hits if h.dense_score is None]
    if unscored:
        cosine |= store.dense_scores(vectors.dense, unscored, acl_tokens=acl_tokens)
    terms = frozenset(vectors.sparse.indices)
    return {h.point_id: round(min(1.0, max(0.0, cosine.get(h.point_id, 0.0),
                                           LEXICAL_WEIGHT * _term_share(terms, h.payload))), 4)
            for h in hits}
