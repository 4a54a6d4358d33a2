"""Embedded store: the real Qdrant engine in-process (qdrant-edge-py), persisted in the data dir."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path

import qdrant_edge as qe

from core import payload as P
from core.errors import StoreError
from core.models import Hit, SearchFilters, SparseVector, StoredChunk
from core.store.conditions import FilterSpec, access_filter, among_points, narrow_to_entities, neighbour_filter
from core.store.estimates import VisibleEstimates
from core.store.lock import acquire_store_lock
from core.store.protocol import (
    SPARSE_FULL_SCAN_THRESHOLD, DenseSearch, HnswGraph, HybridQuery, PrefetchSpec, with_dense_scores,
)

_INDEX_KINDS = {
    "keyword": qe.PayloadSchemaType.Keyword,
    "integer": qe.PayloadSchemaType.Integer,
    "float": qe.PayloadSchemaType.Float,
}
# Below this many kilobytes of vectors a segment is searched without its graph (the engine's default).
_HNSW_FULL_SCAN_KB = 10_000


def _edge_filter(spec: FilterSpec) -> qe.Filter | None:
    must: list = []
    for cond in spec.must:
        if cond.gte is not None:
            must.append(qe.FieldCondition(cond.key, range=qe.RangeFloat(gte=cond.gte)))
        else:
            must.append(qe.FieldCondition(cond.key, match=qe.MatchAny(list(cond.any_of))))
    if spec.only_ids:
        must.append(qe.HasIdCondition(set(spec.only_ids)))
    must_not = [qe.HasIdCondition(set(spec.except_ids))] if spec.except_ids else None
    should = [_edge_filter(FilterSpec(group)) for group in spec.any_group] or None
    if not must and not must_not and not should:
        return None
    return qe.Filter(must=must or None, should=should, must_not=must_not)


def _vector(spec: PrefetchSpec):  # noqa: ANN202
    if isinstance(spec.vector, SparseVector):
        return qe.SparseVector(list(spec.vector.indices), list(spec.vector.values))
    return list(spec.vector)


def _load_shard(path: Path, *, exiting_holder_grace: float) -> qe.EdgeShard:
    """Load the shard once our lock is held. A holder that exits (or is killed) drops our lock and the
    engine's own lock a moment apart, so the engine may still say WouldBlock for that moment: retry
    within the grace instead of failing a CLI command that was told to wait (issue 13)."""
    deadline = time.monotonic() + exiting_holder_grace
    while True:
        try:
            return qe.EdgeShard.load(str(path))
        except Exception as exc:  # noqa: BLE001 - qdrant_edge raises plain exceptions
            if "WouldBlock" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _hit(point) -> Hit:  # noqa: ANN001
    # qdrant-edge decodes a new dict on every .payload access: no copy needed (it is most of a hit's cost)
    return Hit(str(point.id), float(getattr(point, "score", 0.0) or 0.0), point.payload or {})


class EdgeStore:
    """One EdgeShard directory per collection; writes are serialised, reads run concurrently.

    Only one process opens a shard: the store holds an OS file lock from open to ``close()``
    (``core.store.lock``); a second opener waits ``lock_timeout`` seconds, then raises StoreError.
    ``graph`` is how a shard this store creates builds its HNSW graph (None: the engine's m 16 /
    ef_construct 100); an existing shard keeps its own.
    """

    def __init__(
        self, path: Path, *, lock_timeout: float = 0.0, on_wait: Callable[[str], None] | None = None,
        graph: HnswGraph | None = None,
    ) -> None:
        self._path = Path(path)
        self._graph = graph
        self._shard: qe.EdgeShard | None = None
        self._write_lock = threading.Lock()
        self._estimates = VisibleEstimates()  # what each filter leaves, for SearchPlan (forgotten on every write)
        self._process_lock = acquire_store_lock(self._path, timeout=lock_timeout, on_wait=on_wait)
        try:
            if (self._path / "edge_config.json").exists() or any(self._path.glob("segments*")):
                self._shard = _load_shard(self._path, exiting_holder_grace=max(lock_timeout, 1.0))
        except BaseException:
            self._process_lock.release()
            raise

    @property
    def shard(self) -> qe.EdgeShard:
        if self._shard is None:
            raise StoreError(f"no collection at {self._path}: run `stitch ingest` first")
        return self._shard

    def ensure_collection(self, dimension: int) -> None:
        if self._shard is not None:
            return
        self._path.mkdir(parents=True, exist_ok=True)
        config = qe.EdgeConfig(
            vectors={P.DENSE: qe.EdgeVectorParams(size=dimension, distance=qe.Distance.Cosine)},
            sparse_vectors={P.SPARSE: qe.EdgeSparseVectorParams(
                modifier=qe.Modifier.Idf, full_scan_threshold=SPARSE_FULL_SCAN_THRESHOLD)},
            hnsw_config=None if self._graph is None else qe.HnswIndexConfig(
                m=self._graph.m, ef_construct=self._graph.ef_construct, full_scan_threshold=_HNSW_FULL_SCAN_KB),
        )
        self._shard = qe.EdgeShard.create(str(self._path), config)
        for field, kind in P.INDEXED_FIELDS.items():
            self._shard.update(qe.UpdateOperation.create_field_index(field, _INDEX_KINDS[kind]))

    def upsert(self, chunks: Sequence[StoredChunk]) -> None:
        if not chunks:
            return
        points = [
            qe.Point(
                c.point_id,
                {
                    P.DENSE: list(c.dense),
                    P.SPARSE: qe.SparseVector(list(c.sparse.indices), list(c.sparse.values)),
                },
                c.payload,
            )
            for c in chunks
        ]
        self._update(qe.UpdateOperation.upsert_points(points))

    def delete_document(self, doc_id: str, *, keep: Collection[str] = ()) -> None:
        if self._shard is None:
            return
        spec = FilterSpec(access_filter(None, doc_id=doc_id).must, tuple(keep))
        self._update(qe.UpdateOperation.delete_points_by_filter(_edge_filter(spec)))

    def set_document_payload(self, doc_id: str, fields: Mapping[str, object]) -> None:
        if self._shard is None or not fields:
            return
        spec = access_filter(None, doc_id=doc_id)
        self._update(qe.UpdateOperation.set_payload_by_filter(_edge_filter(spec), dict(fields)))

    def _update(self, operation: qe.UpdateOperation) -> None:
        with self._write_lock, self._estimates.writing():
            self.shard.update(operation)

    def search(
        self, query: HybridQuery, *, acl_tokens: Collection[str], filters: SearchFilters | None = None
    ) -> list[Hit]:
        if self._shard is None:
            return []
        base = access_filter(acl_tokens, filters)
        if len(query.prefetches) == 1:
            spec = query.prefetches[0]
            narrowed = narrow_to_entities(base, spec.entity_ids)
            flt = _edge_filter(narrowed)
            request = qe.QueryRequest(
                limit=query.limit,
                query=qe.Query.Nearest(_vector(spec), using=spec.using),
                filter=flt,
                with_payload=query.with_payload,
                params=self._params(query, spec, narrowed, flt),
            )
        else:
            narrowed = [narrow_to_entities(base, spec.entity_ids) for spec in query.prefetches]
            prefetches = [
                qe.Prefetch(
                    limit=spec.limit,
                    query=qe.Query.Nearest(_vector(spec), using=spec.using),
                    filter=(flt := _edge_filter(spec_filter)),
                    params=self._params(query, spec, spec_filter, flt),
                )
                for spec, spec_filter in zip(query.prefetches, narrowed)
            ]
            fusion = (
                qe.Fusion.Dbsf()
                if query.fusion == "dbsf"
                else qe.Fusion.Rrf(k=query.rrf_k, weights=list(query.weights) if query.weights else None)
            )
            # The ACL filter binds every prefetch, and fusion sees only their hits: it is not given again at
            # the top, where the engine ANDs it into each prefetch and multiplies the selectivities (10 %
            # visible is estimated as 1 %, engaging ACORN: 4x the CPU; docs/serving.md §5).
            request = qe.QueryRequest(limit=query.limit, prefetches=prefetches, query=fusion,
                                      with_payload=query.with_payload)
        hits = [_hit(p) for p in self.shard.query(request)]
        return with_dense_scores(self, query, hits, acl_tokens=acl_tokens)

    def _params(self, query: HybridQuery, spec: PrefetchSpec, spec_filter: FilterSpec,
                flt: qe.Filter | None) -> qe.SearchParams:
        acorn = qe.AcornSearchParams(enable=True, max_selectivity=query.acorn_max_selectivity) if query.acorn else None
        search = self._dense_search(query, spec, spec_filter, flt)
        return qe.SearchParams(exact=search.exact, hnsw_ef=search.hnsw_ef, acorn=acorn)

    def _dense_search(self, query: HybridQuery, spec: PrefetchSpec, spec_filter: FilterSpec,
                      flt: qe.Filter | None) -> DenseSearch:
        """Exact scoring for a dense prefetch whose filter leaves few points (at 1M chunks a 1 % role,
        10k points, costs 230 ms of CPU by ACORN and ~7 ms exactly), the wide beam only when the filter
        leaves a large share (a 10 % role at 1M needs no more than the prefetch's limit; docs/serving.md §5).
        The estimates come from the payload index and are kept per filter (core.store.estimates); sparse
        prefetches are exact already."""
        if not query.by_estimate(spec):
            return DenseSearch(exact=query.exact, hnsw_ef=query.hnsw_ef)
        visible = self._estimates.get(spec_filter, lambda: self.shard.count(qe.CountRequest(exact=False, filter=flt)))
        return query.dense_search(visible, lambda: self._estimates.get(
            "collection size", lambda: self.shard.count(qe.CountRequest(exact=False))))

    def fetch_chunks(
        self, doc_id: str, indexes: Collection[int], *, acl_tokens: Collection[str]
    ) -> list[Hit]:
        return self.fetch_neighbours({doc_id: indexes}, acl_tokens=acl_tokens)

    def fetch_neighbours(
        self, wanted: Mapping[str, Collection[int]], *, acl_tokens: Collection[str]
    ) -> list[Hit]:
        size = sum(len(indexes) for indexes in wanted.values())
        if not size or self._shard is None:
            return []
        return self._scroll(neighbour_filter(acl_tokens, wanted), limit=size + 1)

    def dense_vectors(self, point_ids: Collection[str], *, acl_tokens: Collection[str]) -> dict[str, tuple[float, ...]]:
        if not point_ids or self._shard is None:
            return {}
        records, _ = self.shard.scroll(qe.ScrollRequest(
            limit=len(point_ids), filter=_edge_filter(among_points(acl_tokens, point_ids)),
            with_payload=False, with_vector=[P.DENSE],
        ))
        return {str(r.id): tuple(r.vector[P.DENSE]) for r in records}

    def dense_scores(
        self, vector: tuple[float, ...], point_ids: Collection[str], *, acl_tokens: Collection[str]
    ) -> dict[str, float]:
        if not point_ids or self._shard is None:
            return {}
        points = self.shard.query(qe.QueryRequest(
            limit=len(point_ids), query=qe.Query.Nearest(list(vector), using=P.DENSE), with_payload=False,
            filter=_edge_filter(among_points(acl_tokens, point_ids)), params=qe.SearchParams(exact=True),
        ))
        return {str(p.id): float(p.score) for p in points}

    def document_chunks(
        self, doc_id: str, *, acl_tokens: Collection[str] | None, limit: int = 10_000
    ) -> list[Hit]:
        if self._shard is None:
            return []
        return self._scroll(access_filter(acl_tokens, doc_id=doc_id), limit=limit)

    def _scroll(self, spec: FilterSpec, *, limit: int) -> list[Hit]:
        records, _ = self.shard.scroll(
            qe.ScrollRequest(limit=limit, filter=_edge_filter(spec), with_payload=True)
        )
        hits = [_hit(r) for r in records]
        return sorted(hits, key=lambda h: (h.payload.get(P.DOC_ID, ""), h.payload.get(P.CHUNK_INDEX, 0)))

    def count(self, *, acl_tokens: Collection[str] | None = None, filters: SearchFilters | None = None) -> int:
        if self._shard is None:
            return 0
        return int(self.shard.count(qe.CountRequest(exact=True, filter=_edge_filter(access_filter(acl_tokens, filters)))))

    def ready(self) -> bool:
        try:
            self.count()
        except Exception:  # noqa: BLE001 - readiness must answer, not raise
            return False
        return True

    def flush(self) -> None:
        if self._shard is not None:
            with self._write_lock:
                self._shard.flush()

    def optimize(self) -> None:
        if self._shard is not None:
            with self._write_lock:
                self._shard.optimize()

    def close(self) -> None:
        if self._shard is not None:
            with self._write_lock:
                self._shard.close()
            self._shard = None
        self._process_lock.release()
