"""Server/cluster store: qdrant-client against a URL (tests run it on ``QdrantClient(":memory:")``)."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from qdrant_client import QdrantClient, models

from core import payload as P
from core.errors import StoreError
from core.models import Hit, SearchFilters, SparseVector, StoredChunk
from core.store.conditions import FilterSpec, access_filter, among_points, narrow_to_entities, neighbour_filter
from core.store.estimates import VisibleEstimates
from core.store.protocol import (
    SPARSE_FULL_SCAN_THRESHOLD, DenseSearch, HnswGraph, HybridQuery, PrefetchSpec, with_dense_scores,
)

_INDEX_KINDS = {
    "keyword": models.PayloadSchemaType.KEYWORD,
    "integer": models.PayloadSchemaType.INTEGER,
    "float": models.PayloadSchemaType.FLOAT,
}


def _client_filter(spec: FilterSpec) -> models.Filter | None:
    must: list = []
    for cond in spec.must:
        if cond.gte is not None:
            must.append(models.FieldCondition(key=cond.key, range=models.Range(gte=cond.gte)))
        else:
            must.append(models.FieldCondition(key=cond.key, match=models.MatchAny(any=list(cond.any_of))))
    if spec.only_ids:
        must.append(models.HasIdCondition(has_id=list(spec.only_ids)))
    must_not = [models.HasIdCondition(has_id=list(spec.except_ids))] if spec.except_ids else None
    should = [_client_filter(FilterSpec(group)) for group in spec.any_group] or None
    if not must and not must_not and not should:
        return None
    return models.Filter(must=must or None, should=should, must_not=must_not)


def _vector(spec: PrefetchSpec):  # noqa: ANN202
    if isinstance(spec.vector, SparseVector):
        return models.SparseVector(indices=list(spec.vector.indices), values=list(spec.vector.values))
    return list(spec.vector)


def _hit(point) -> Hit:  # noqa: ANN001
    return Hit(str(point.id), float(getattr(point, "score", 0.0) or 0.0), dict(point.payload or {}))


class ServerStore:
    """One collection in a Qdrant server or cluster (or qdrant-client's local mode in tests). ``graph`` is
    how a collection this store creates builds its HNSW graph (None: the server's default); an existing
    collection keeps its own."""

    def __init__(
        self,
        client: QdrantClient,
        collection: str,
        *,
        shard_number: int = 1,
        replication_factor: int = 1,
        graph: HnswGraph | None = None,
    ) -> None:
        self._client = client
        self._graph = graph
        self._collection = collection
        self._shard_number = shard_number
        self._replication_factor = replication_factor
        self._known_to_exist = False
        # What each filter leaves, for SearchPlan: forgotten on this process's writes, at most a few seconds
        # old for another replica's (core.store.estimates)
        self._estimates = VisibleEstimates()

    def _exists(self) -> bool:
        """Asked of the server until the collection exists, then remembered: a collection is never
        dropped by Stitch, so every read need not pay a round trip for it."""
        if not self._known_to_exist:
            self._known_to_exist = self._client.collection_exists(self._collection)
        return self._known_to_exist

    def ensure_collection(self, dimension: int) -> None:
        if self._exists():
            return
        self._client.create_collection(
            self._collection,
            # The graph on the dense vector itself (it overrides the collection's): BM25 has no HNSW graph
            vectors_config={P.DENSE: models.VectorParams(
                size=dimension, distance=models.Distance.COSINE,
                hnsw_config=None if self._graph is None else models.HnswConfigDiff(
                    m=self._graph.m, ef_construct=self._graph.ef_construct))},
            sparse_vectors_config={P.SPARSE: models.SparseVectorParams(
                modifier=models.Modifier.IDF,
                index=models.SparseIndexParams(full_scan_threshold=SPARSE_FULL_SCAN_THRESHOLD))},
            shard_number=self._shard_number,
            replication_factor=self._replication_factor,
        )
        for field, kind in P.INDEXED_FIELDS.items():
            self._client.create_payload_index(self._collection, field, _INDEX_KINDS[kind])
        self._known_to_exist = True

    def upsert(self, chunks: Sequence[StoredChunk]) -> None:
        if not chunks:
            return
        points = [
            models.PointStruct(
                id=c.point_id,
                vector={
                    P.DENSE: list(c.dense),
                    P.SPARSE: models.SparseVector(indices=list(c.sparse.indices), values=list(c.sparse.values)),
                },
                payload=c.payload,
            )
            for c in chunks
        ]
        with self._estimates.writing():
            self._client.upsert(self._collection, points=points, wait=True)

    def delete_document(self, doc_id: str, *, keep: Collection[str] = ()) -> None:
        if not self._exists():
            return
        spec = FilterSpec(access_filter(None, doc_id=doc_id).must, tuple(keep))
        with self._estimates.writing():
            self._client.delete(
                self._collection, points_selector=models.FilterSelector(filter=_client_filter(spec)), wait=True
            )

    def set_document_payload(self, doc_id: str, fields: Mapping[str, object]) -> None:
        if not fields or not self._exists():
            return
        selector = models.FilterSelector(filter=_client_filter(access_filter(None, doc_id=doc_id)))
        with self._estimates.writing():
            self._client.set_payload(self._collection, payload=dict(fields), points=selector, wait=True)

    def search(
        self, query: HybridQuery, *, acl_tokens: Collection[str], filters: SearchFilters | None = None
    ) -> list[Hit]:
        if not self._exists():
            return []
        base = access_filter(acl_tokens, filters)
        if len(query.prefetches) == 1:
            spec = query.prefetches[0]
            narrowed = narrow_to_entities(base, spec.entity_ids)
            flt = _client_filter(narrowed)
            response = self._client.query_points(
                self._collection,
                query=_vector(spec),
                using=spec.using,
                query_filter=flt,
                limit=query.limit,
                with_payload=query.with_payload,
                search_params=self._params(query, spec, narrowed, flt),
            )
        else:
            narrowed = [narrow_to_entities(base, spec.entity_ids) for spec in query.prefetches]
            prefetch = [
                models.Prefetch(
                    query=_vector(spec),
                    using=spec.using,
                    limit=spec.limit,
                    filter=(flt := _client_filter(spec_filter)),
                    params=self._params(query, spec, spec_filter, flt),
                )
                for spec, spec_filter in zip(query.prefetches, narrowed)
            ]
            fusion = (
                models.FusionQuery(fusion=models.Fusion.DBSF)
                if query.fusion == "dbsf"
                else models.RrfQuery(
                    rrf=models.Rrf(k=query.rrf_k, weights=list(query.weights) if query.weights else None)
                )
            )
            response = self._client.query_points(
                self._collection,
                prefetch=prefetch,
                query=fusion,  # the ACL filter is in every prefetch, not again here (see EdgeStore.search)
                limit=query.limit,
                with_payload=query.with_payload,
            )
        return with_dense_scores(self, query, [_hit(p) for p in response.points], acl_tokens=acl_tokens)

    def _params(self, query: HybridQuery, spec: PrefetchSpec, spec_filter: FilterSpec,
                flt: models.Filter | None) -> models.SearchParams:
        acorn = models.AcornSearchParams(enable=True, max_selectivity=query.acorn_max_selectivity) if query.acorn else None
        search = self._dense_search(query, spec, spec_filter, flt)
        return models.SearchParams(exact=search.exact, hnsw_ef=search.hnsw_ef, acorn=acorn)

    def _dense_search(self, query: HybridQuery, spec: PrefetchSpec, spec_filter: FilterSpec,
                      flt: models.Filter | None) -> DenseSearch:
        """As ``EdgeStore._dense_search``: the estimates are the server's payload-index cardinality, a round
        trip each when not kept (the collection's size only when the filter leaves too many for exact)."""
        if not query.by_estimate(spec):
            return DenseSearch(exact=query.exact, hnsw_ef=query.hnsw_ef)
        visible = self._estimates.get(
            spec_filter, lambda: self._client.count(self._collection, count_filter=flt, exact=False).count)
        return query.dense_search(visible, lambda: self._estimates.get(
            "collection size", lambda: self._client.count(self._collection, exact=False).count))

    def fetch_chunks(
        self, doc_id: str, indexes: Collection[int], *, acl_tokens: Collection[str]
    ) -> list[Hit]:
        return self.fetch_neighbours({doc_id: indexes}, acl_tokens=acl_tokens)

    def fetch_neighbours(
        self, wanted: Mapping[str, Collection[int]], *, acl_tokens: Collection[str]
    ) -> list[Hit]:
        size = sum(len(indexes) for indexes in wanted.values())
        if not size or not self._exists():
            return []
        return self._scroll(neighbour_filter(acl_tokens, wanted), limit=size + 1)

    def dense_vectors(self, point_ids: Collection[str], *, acl_tokens: Collection[str]) -> dict[str, tuple[float, ...]]:
        if not point_ids or not self._exists():
            return {}
        records, _ = self._client.scroll(
            self._collection, limit=len(point_ids), with_payload=False, with_vectors=[P.DENSE],
            scroll_filter=_client_filter(among_points(acl_tokens, point_ids)),
        )
        return {str(r.id): tuple(r.vector[P.DENSE]) for r in records}

    def dense_scores(
        self, vector: tuple[float, ...], point_ids: Collection[str], *, acl_tokens: Collection[str]
    ) -> dict[str, float]:
        if not point_ids or not self._exists():
            return {}
        response = self._client.query_points(
            self._collection, query=list(vector), using=P.DENSE, limit=len(point_ids), with_payload=False,
            query_filter=_client_filter(among_points(acl_tokens, point_ids)),
            search_params=models.SearchParams(exact=True),
        )
        return {str(p.id): float(p.score) for p in response.points}

    def document_chunks(
        self, doc_id: str, *, acl_tokens: Collection[str] | None, limit: int = 10_000
    ) -> list[Hit]:
        if not self._exists():
            return []
        return self._scroll(access_filter(acl_tokens, doc_id=doc_id), limit=limit)

    def _scroll(self, spec: FilterSpec, *, limit: int) -> list[Hit]:
        records, _ = self._client.scroll(
            self._collection, scroll_filter=_client_filter(spec), limit=limit, with_payload=True
        )
        hits = [_hit(r) for r in records]
        return sorted(hits, key=lambda h: (h.payload.get(P.DOC_ID, ""), h.payload.get(P.CHUNK_INDEX, 0)))

    def count(self, *, acl_tokens: Collection[str] | None = None, filters: SearchFilters | None = None) -> int:
        if not self._exists():
            return 0
        result = self._client.count(
            self._collection, count_filter=_client_filter(access_filter(acl_tokens, filters)), exact=True
        )
        return int(result.count)

    def ready(self) -> bool:
        try:
            self._client.get_collections()
        except Exception:  # noqa: BLE001 - readiness must answer, not raise
            return False
        return True

    def flush(self) -> None:
        """Writes use ``wait=True``; nothing is buffered client-side."""

    def optimize(self) -> None:
        """The server optimises in the background."""

    def close(self) -> None:
        try:
            self._client.close()
        except Exception as exc:  # noqa: BLE001
            raise StoreError(f"closing Qdrant client failed: {exc}") from exc
