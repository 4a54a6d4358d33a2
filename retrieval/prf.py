"""RM3 pseudo-relevance feedback on the BM25 side: expand the query with the terms that dominate
the first pass's top documents, then search again with the expanded sparse vector.

Why RM3 and not Rocchio on BM25 weights: it is the PRF with published gains on CACM and BEIR
(Lavrenko & Croft's relevance model, interpolated with the original query as in Anserini's RM3),
it needs no corpus statistics beyond what the store already applies (the collection's IDF is
multiplied in by Qdrant at query time), and it works from the stored chunk text of the top few
hits, so the second pass costs one tokenisation of ~10 chunks and one more store query.

The relevance model: P(w|R) = Σ_d P(d|q) · P(w|d), with P(w|d) the chunk's BM25 term weights
normalised to sum 1 and P(d|q) the fused scores normalised to sum 1. The ``terms`` heaviest words
are kept, renormalised, and mixed with the original query (each term 1/|q|):
q' = (1 − weight) · q + weight · R.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from core import payload as P
from core.models import Hit, SparseVector
from core.sparse import sparse_document_vector


@dataclass(frozen=True)
class Feedback:
    """How much pseudo-relevance feedback to apply (``SearchPlan.feedback``; None = off)."""

    docs: int = 10  # top hits of the first pass taken as relevant
    terms: int = 10  # expansion terms kept from the relevance model
    weight: float = 0.5  # share of the expansion in the final query (RM3's 1 - originalQueryWeight)

    def __post_init__(self) -> None:
        if self.docs < 1 or self.terms < 1:
            raise ValueError(f"Feedback.docs and .terms must be ≥ 1, got {self.docs}, {self.terms}")
        if not 0.0 <= self.weight <= 1.0:
            raise ValueError(f"Feedback.weight must lie in [0, 1], got {self.weight}")


def _hit_terms(hit: Hit) -> dict[int, float]:
    """P(w|d) of one chunk: its BM25 term weights (title included, as at ingest) summing to 1."""
    text = f"{hit.payload.get(P.TITLE) or ''}\n{hit.payload.get(P.TEXT) or ''}"
    vec = sparse_document_vector(text)
    total = sum(vec.values)
    return {i: v / total for i, v in zip(vec.indices, vec.values)} if total > 0 else {}


def relevance_model(hits: Sequence[Hit], terms: int) -> dict[int, float]:
    """The ``terms`` heaviest words of P(w|R) over ``hits``, renormalised to sum 1."""
    scores = [max(h.score, 0.0) for h in hits]
    total = sum(scores)
    # fused scores can all be 0 (e.g. one-sided DBSF): fall back to equal document weights
    doc_weights = [s / total for s in scores] if total > 0 else [1.0 / max(1, len(hits))] * len(hits)
    model: dict[int, float] = {}
    for hit, weight in zip(hits, doc_weights):
        for term, p in _hit_terms(hit).items():
            model[term] = model.get(term, 0.0) + weight * p
    top = sorted(model.items(), key=lambda kv: (-kv[1], kv[0]))[:terms]
    mass = sum(p for _, p in top)
    return {t: p / mass for t, p in top} if mass > 0 else {}


def expand_query(query: SparseVector, hits: Sequence[Hit], feedback: Feedback) -> SparseVector:
    """The RM3 query: original terms (1/|q| each) mixed with the relevance model of ``hits``."""
    model = relevance_model(hits[: feedback.docs], feedback.terms)
    if not query.indices or not model:
        return query
    mixed = {t: (1.0 - feedback.weight) / len(query.indices) for t in query.indices}
    for term, p in model.items():
        mixed[term] = mixed.get(term, 0.0) + feedback.weight * p
    ordered = sorted(mixed.items())
    return SparseVector(tuple(t for t, _ in ordered), tuple(w for _, w in ordered))
