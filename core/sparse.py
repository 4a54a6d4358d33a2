"""BM25 sparse vectors computed in-process by qdrant-edge's tokenizer/stemmer (no model download).

Documents carry term-frequency weights; the store applies IDF (``Modifier.IDF``), so the same
vectors work in the embedded engine and in a Qdrant server.
"""

from __future__ import annotations

from functools import lru_cache

from core.models import SparseVector


@lru_cache(maxsize=1)
def _bm25():  # noqa: ANN202 - qdrant_edge.Bm25
    from qdrant_edge import Bm25, Bm25Config

    return Bm25(Bm25Config(language="english"))


def sparse_document_vector(text: str) -> SparseVector:
    """BM25 document-side vector (stemmed English, stopwords removed)."""
    vec = _bm25().embed_document(text)
    return SparseVector(tuple(vec.indices), tuple(float(v) for v in vec.values))


def sparse_query_vector(text: str) -> SparseVector:
    """BM25 query-side vector."""
    vec = _bm25().embed_query(text)
    return SparseVector(tuple(vec.indices), tuple(float(v) for v in vec.values))
