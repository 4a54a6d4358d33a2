"""What retrieval and ingest need from a vector store, independent of the Qdrant flavour.

Every read takes the caller's ACL tokens and applies them inside the store query (every
prefetch, every neighbour fetch). An empty token set matches nothing: deny by default.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal, Protocol

from core.models import Hit, SearchFilters, SparseVector, StoredChunk

FusionKind = Literal["rrf", "dbsf"]

# A sparse (BM25) search whose filter leaves fewer points than this scores them one by one instead of
# walking the inverted index with the filter (engine default 5,000): at 1M chunks a 1 % role (10k points)
# cost ~20 ms of CPU by the walk of the long posting lists and 10-14 ms one by one (~1 µs a point, so the
# walk is cheaper again from ~15k; docs/serving.md §5). A collection setting, applied at creation.
SPARSE_FULL_SCAN_THRESHOLD = 15_000


@dataclass(frozen=True)
class HnswGraph:
    """How the dense HNSW graph is built (``Settings.hnsw_m`` / ``hnsw_ef_construct``): links per point and
    the candidate beam while linking. A collection setting, applied when the collection is created; a
    collection keeps the graph it was built with (docs/serving.md §5)."""

    m: int
    ef_construct: int


@dataclass(frozen=True)
class PrefetchSpec:
    """One candidate source of a hybrid query: a dense or sparse nearest search."""

    using: str  # core.payload.DENSE or core.payload.SPARSE
    vector: tuple[float, ...] | SparseVector
    limit: int
    entity_ids: tuple[str, ...] = ()  # narrows this prefetch to chunks about these entities


@dataclass(frozen=True)
class HybridQuery:
    """Prefetches fused inside Qdrant; one prefetch means a plain nearest search."""

    prefetches: tuple[PrefetchSpec, ...]
    limit: int = 10
    fusion: FusionKind = "rrf"
    rrf_k: int = 2
    weights: tuple[float, ...] | None = None
    exact: bool = False
    hnsw_ef: int | None = None  # HNSW beam width (None: the index's ef_construct)
    acorn: bool = False  # ACORN filtered search: explore 2-hop neighbours when the filter is selective
    acorn_max_selectivity: float | None = None  # ACORN engages below this visible share (None: engine's 0.4)
    # A dense prefetch whose filter leaves at most this many points (the engine's cardinality estimate)
    # is scored exactly instead of by filtered HNSW/ACORN (None: never; docs/serving.md §5).
    exact_max_visible: int | None = None
    # ``hnsw_ef`` applies only when the filter leaves at least this share of the points (the estimate
    # again); below it the engine's own beam, which is at least the prefetch's limit (None: always ef).
    hnsw_ef_min_share: float | None = None
    with_payload: bool = True  # False: ids and scores only (``Hit.payload`` is {}), no payload decoded
    # True: each hit also carries its exact dense cosine to the first dense prefetch's vector
    # (``Hit.dense_score``), scored by the store in the same call (``with_dense_scores``): a worker process
    # gets its hits and their relevance in one round trip to the store's process.
    with_dense_score: bool = False

    def dense_vector(self) -> tuple[float, ...] | None:
        """The vector of the first dense prefetch (what ``Hit.dense_score`` is measured against), if any."""
        return next((s.vector for s in self.prefetches if not isinstance(s.vector, SparseVector)), None)

    def by_estimate(self, spec: PrefetchSpec) -> bool:
        """Whether a store decides how to search ``spec`` by counting (an estimate) the points its filter
        leaves: a dense prefetch, when the query is not exact anyway and has a threshold or a share."""
        decides = self.exact_max_visible is not None or self.hnsw_ef_min_share is not None
        return not self.exact and decides and not isinstance(spec.vector, SparseVector)

    def dense_search(self, visible: int, total: Callable[[], int]) -> DenseSearch:
        """How to search a dense prefetch whose filter leaves ``visible`` points (an estimate) of
        ``total()`` (asked only when needed): exactly when few are visible, the wide beam when many are."""
        if self.exact_max_visible is not None and visible <= self.exact_max_visible:
            return DenseSearch(exact=True, hnsw_ef=self.hnsw_ef)
        if self.hnsw_ef_min_share is None or self.hnsw_ef is None:
            return DenseSearch(exact=False, hnsw_ef=self.hnsw_ef)
        wide = visible >= self.hnsw_ef_min_share * max(1, total())
        return DenseSearch(exact=False, hnsw_ef=self.hnsw_ef if wide else None)


def with_dense_scores(store: "VectorStore", query: HybridQuery, hits: list[Hit], *,
                      acl_tokens: Collection[str]) -> list[Hit]:
    """``hits`` with ``dense_score`` set when ``query`` asked for it (``store.dense_scores``, ACL-filtered); a
    plain dense query's scores are those cosines already (cosine distance), so it is not asked again."""
    vector = query.dense_vector() if query.with_dense_score else None
    if vector is None or not hits:
        return hits
    if len(query.prefetches) == 1:
        return [replace(h, dense_score=h.score) for h in hits]
    scores = store.dense_scores(vector, [h.point_id for h in hits], acl_tokens=acl_tokens)
    return [replace(h, dense_score=scores.get(h.point_id)) for h in hits]


@dataclass(frozen=True)
class DenseSearch:
    """The engine parameters one dense prefetch is searched with (``HybridQuery.dense_search``)."""

    exact: bool
    hnsw_ef: int | None


class VectorStore(Protocol):
    """A Qdrant collection of chunks with dense ``dense`` and sparse ``bm25`` vectors."""

    def ensure_collection(self, dimension: int) -> None:
        """Create the collection and payload indexes if missing."""
        ...

    def upsert(self, chunks: Sequence[StoredChunk]) -> None:
        """Insert or replace chunks by point id."""
        ...

    def delete_document(self, doc_id: str, *, keep: Collection[str] = ()) -> None:
        """Delete every chunk of a document except the point ids in ``keep``."""
        ...

    def set_document_payload(self, doc_id: str, fields: Mapping[str, object]) -> None:
        """Overwrite payload ``fields`` on every chunk of a document (ACL, entity ids: document-level facts)."""
        ...

    def search(
        self, query: HybridQuery, *, acl_tokens: Collection[str], filters: SearchFilters | None = None
    ) -> list[Hit]:
        """Hybrid search; the ACL filter and ``filters`` apply to every prefetch."""
        ...

    def fetch_chunks(
        self, doc_id: str, indexes: Collection[int], *, acl_tokens: Collection[str]
    ) -> list[Hit]:
        """Chunks of one document by position, ACL-filtered (``fetch_neighbours`` for one document)."""
        ...

    def fetch_neighbours(
        self, wanted: Mapping[str, Collection[int]], *, acl_tokens: Collection[str]
    ) -> list[Hit]:
        """Chunks of several documents by position in one ACL-filtered fetch (neighbour stitching),
        ordered by document then position."""
        ...

    def dense_vectors(self, point_ids: Collection[str], *, acl_tokens: Collection[str]) -> dict[str, tuple[float, ...]]:
        """Stored dense vectors of these chunks, ACL-filtered (dense pseudo-relevance feedback)."""
        ...

    def dense_scores(
        self, vector: tuple[float, ...], point_ids: Collection[str], *, acl_tokens: Collection[str]
    ) -> dict[str, float]:
        """The dense cosine of each of these chunks to ``vector``, scored exactly and ACL-filtered: a chunk the
        caller may not see has no score (the relevance of a request's hits, retrieval/relevance.py)."""
        ...

    def document_chunks(
        self, doc_id: str, *, acl_tokens: Collection[str] | None, limit: int = 10_000
    ) -> list[Hit]:
        """All chunks of a document in order; ``acl_tokens=None`` is the unfiltered admin view."""
        ...

    def count(self, *, acl_tokens: Collection[str] | None = None, filters: SearchFilters | None = None) -> int:
        """Number of chunks (visible to ``acl_tokens`` when given)."""
        ...

    def ready(self) -> bool:
        """True when the store answers."""
        ...

    def flush(self) -> None:
        """Make writes durable."""
        ...

    def optimize(self) -> None:
        """Build indexes after a bulk load."""
        ...

    def close(self) -> None:
        """Release the store."""
        ...
