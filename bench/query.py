"""Query latency and HNSW recall of the embedded store at ~100k chunks; prints one JSON object.

    .venv/bin/python -m bench.query [--chunks 100000] [--queries 200] [--with-encoder]

Vectors are synthetic but clustered like real embeddings (topics + noise, 384-d, unit length) with
Zipf-distributed BM25 terms, so HNSW sees realistic neighbourhoods. Every query carries an ACL
filter, as in production. Recall@10 compares HNSW against ``exact=True`` on the same filter.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from core import payload as P
from core.models import SparseVector, StoredChunk
from core.store.edge import EdgeStore
from core.store.protocol import HybridQuery, PrefetchSpec
from evaluation.metrics import percentile

DIM, TOPICS, VOCAB = 384, 2000, 30_000


def _unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def _sparse(rng: np.random.Generator, n_terms: int) -> SparseVector:
    terms = np.unique(np.minimum(rng.zipf(1.3, n_terms), VOCAB))
    return SparseVector(tuple(int(t) for t in terms), tuple(float(v) for v in rng.uniform(0.5, 2.0, len(terms))))


def build(store: EdgeStore, n: int, rng: np.random.Generator, centres: np.ndarray) -> float:
    """Upsert ``n`` chunks in batches and optimise; returns seconds."""
    started = time.perf_counter()
    store.ensure_collection(DIM)
    for offset in range(0, n, 2000):
        size = min(2000, n - offset)
        topics = rng.integers(0, TOPICS, size)
        dense = _unit(centres[topics] + rng.normal(0, 0.35, (size, DIM)).astype(np.float32) / np.sqrt(DIM) * 4)
        batch = []
        for i in range(size):
            idx = offset + i
            payload = {P.DOC_ID: f"bench:{idx // 4}", P.CHUNK_INDEX: idx % 4, P.SOURCE: "bench",
                       P.ACL: ["public", "role:a" if idx % 2 else "role:b"], P.TEXT: ""}
            batch.append(StoredChunk(P.chunk_point_id(f"bench:{idx}", 0, ""), tuple(dense[i].tolist()),
                                     _sparse(rng, 40), payload))
        store.upsert(batch)
    store.flush()
    store.optimize()
    return time.perf_counter() - started


def _query(dense, sparse, *, exact: bool, hybrid: bool, depth: int = 100) -> HybridQuery:
    specs = [PrefetchSpec(P.DENSE, dense, depth if hybrid else 10)]
    if hybrid:
        specs.append(PrefetchSpec(P.SPARSE, sparse, depth))
    return HybridQuery(tuple(specs), limit=10, rrf_k=2, exact=exact)


def measure(store: EdgeStore, queries, tokens: tuple[str, ...]) -> dict:
    """Hybrid latency, and dense HNSW recall@10 against exact search, under one ACL filter."""
    latencies, recalls = [], []
    for dense, sparse in queries:
        t0 = time.perf_counter()
        store.search(_query(dense, sparse, exact=False, hybrid=True), acl_tokens=tokens)
        latencies.append((time.perf_counter() - t0) * 1000)
        approx = {h.point_id for h in store.search(_query(dense, sparse, exact=False, hybrid=False), acl_tokens=tokens)}
        exact = {h.point_id for h in store.search(_query(dense, sparse, exact=True, hybrid=False), acl_tokens=tokens)}
        recalls.append(len(approx & exact) / max(1, len(exact)))
    return {"hybrid_search_ms": {"p50": round(percentile(latencies, 50), 2), "p95": round(percentile(latencies, 95), 2)},
            "hnsw_recall@10": round(float(np.mean(recalls)), 4)}


def encoder_latency(n: int) -> dict:
    """Query embedding latency of the configured encoder (packaged MiniLM by default)."""
    from core.config import get_settings
    from core.encoder import load_encoder
    from core.sparse import sparse_query_vector

    encoder = load_encoder(get_settings())
    encoder.encode_query("warm up")
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        encoder.encode_query(f"does vitamin {i} reduce the risk of cardiovascular disease in adults")
        sparse_query_vector(f"does vitamin {i} reduce the risk")
        out.append((time.perf_counter() - t0) * 1000)
    return {"p50": round(percentile(out, 50), 2), "p95": round(percentile(out, 95), 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--with-encoder", action="store_true", help="also time query embedding")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(7)
    centres = _unit(rng.normal(size=(TOPICS, DIM)).astype(np.float32))
    scratch = Path(tempfile.mkdtemp(prefix="stitch-bench-"))
    store = EdgeStore(scratch / "edge")
    try:
        seconds = build(store, args.chunks, rng, centres)
        topics = rng.integers(0, TOPICS, args.queries)
        dense = _unit(centres[topics] + rng.normal(0, 0.35, (args.queries, DIM)).astype(np.float32) / np.sqrt(DIM) * 4)
        queries = [(tuple(d.tolist()), _sparse(rng, 6)) for d in dense]
        result = {"chunks": store.count(), "build_seconds": round(seconds, 1),
                  "acl_all": measure(store, queries, ("public",)),
                  "acl_half": measure(store, queries, ("role:a",))}
        if args.with_encoder:
            result["query_embed_ms"] = encoder_latency(50)
    finally:
        store.close()
        shutil.rmtree(scratch, ignore_errors=True)
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
