"""Filtered HNSW recall and latency of the embedded store; prints one JSON object.

    .venv/bin/python -m bench.query [--chunks 100000] [--queries 100] [--with-encoder] [--keep DIR]

Vectors are synthetic but clustered like real embeddings (topics + noise, 384-d, unit length) with
Zipf-distributed BM25 terms, so HNSW sees realistic neighbourhoods. Every chunk carries ``public``
plus nested selectivity tokens (``sel:50`` on a random 50 %, ``sel:10`` on 10 %, ``sel:1``, ``sel:0.1``),
indexed (payload index on ``acl``) before the bulk load, as ``EdgeStore.ensure_collection`` does.
For every ACL filter and every search-parameter setting: dense recall@10 against ``exact=True`` under
the same filter, and p50/p95 of the dense search and of the full hybrid query. ``--keep DIR`` keeps
(and on a re-run reuses) the built store.
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
SELECTIVITY = {"public": 1.0, "sel:50": 0.5, "sel:10": 0.1, "sel:1": 0.01, "sel:0.1": 0.001}
SETTINGS = {  # name: (hnsw_ef, acorn)
    "default": (None, False),
    "ef128": (128, False),
    "ef256": (256, False),
    "acorn": (None, True),
    "acorn+ef128": (128, True),
}


def _unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def _sparse(rng: np.random.Generator, n_terms: int) -> SparseVector:
    terms = np.unique(np.minimum(rng.zipf(1.3, n_terms), VOCAB))
    return SparseVector(tuple(int(t) for t in terms), tuple(float(v) for v in rng.uniform(0.5, 2.0, len(terms))))


def _acl(draw: float) -> list[str]:
    return [token for token, share in SELECTIVITY.items() if draw < share]


def build(store: EdgeStore, n: int, rng: np.random.Generator, centres: np.ndarray) -> float:
    """Upsert ``n`` chunks in batches and optimise; returns seconds."""
    started = time.perf_counter()
    store.ensure_collection(DIM)  # payload indexes (acl among them) exist before the first point
    for offset in range(0, n, 2000):
        size = min(2000, n - offset)
        topics = rng.integers(0, TOPICS, size)
        dense = _unit(centres[topics] + rng.normal(0, 0.35, (size, DIM)).astype(np.float32) / np.sqrt(DIM) * 4)
        draws = rng.random(size)
        batch = []
        for i in range(size):
            idx = offset + i
            payload = {P.DOC_ID: f"bench:{idx // 4}", P.CHUNK_INDEX: idx % 4, P.SOURCE: "bench",
                       P.ACL: _acl(draws[i]), P.TEXT: ""}
            batch.append(StoredChunk(P.chunk_point_id(f"bench:{idx}", 0, ""), tuple(dense[i].tolist()),
                                     _sparse(rng, 40), payload))
        store.upsert(batch)
    store.flush()
    store.optimize()
    return time.perf_counter() - started


def _query(dense, sparse, *, hybrid: bool, exact: bool = False, ef: int | None = None, acorn: bool = False,
           depth: int = 100) -> HybridQuery:
    specs = [PrefetchSpec(P.DENSE, dense, depth if hybrid else 10)]
    if hybrid:
        specs.append(PrefetchSpec(P.SPARSE, sparse, depth))
    return HybridQuery(tuple(specs), limit=10, fusion="dbsf", exact=exact, hnsw_ef=ef, acorn=acorn)


def _timed(store: EdgeStore, query: HybridQuery, tokens: tuple[str, ...]) -> tuple[set[str], float]:
    t0 = time.perf_counter()
    hits = store.search(query, acl_tokens=tokens)
    return {h.point_id for h in hits}, (time.perf_counter() - t0) * 1000


def _stats(values: list[float]) -> dict:
    return {"p50": round(percentile(values, 50), 2), "p95": round(percentile(values, 95), 2)}


def measure(store: EdgeStore, queries, tokens: tuple[str, ...]) -> dict:
    """Per search setting: dense recall@10 vs exact, dense and hybrid latency, under one ACL filter."""
    exact = [_timed(store, _query(d, s, hybrid=False, exact=True), tokens)[0] for d, s in queries]
    out = {}
    for name, (ef, acorn) in SETTINGS.items():
        recalls, dense_ms, hybrid_ms = [], [], []
        for (dense, sparse), truth in zip(queries, exact):
            got, ms = _timed(store, _query(dense, sparse, hybrid=False, ef=ef, acorn=acorn), tokens)
            recalls.append(len(got & truth) / max(1, len(truth)))
            dense_ms.append(ms)
            hybrid_ms.append(_timed(store, _query(dense, sparse, hybrid=True, ef=ef, acorn=acorn), tokens)[1])
        out[name] = {"recall@10": round(float(np.mean(recalls)), 4), "min_recall@10": round(min(recalls), 2),
                     "dense_ms": _stats(dense_ms), "hybrid_ms": _stats(hybrid_ms)}
    return out


def encoder_latency(n: int) -> dict:
    """Query embedding latency of the configured encoder (packaged MiniLM, default backend)."""
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
    return _stats(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--with-encoder", action="store_true", help="also time query embedding")
    parser.add_argument("--keep", type=Path, help="build into (or reuse) this directory")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(7)
    centres = _unit(rng.normal(size=(TOPICS, DIM)).astype(np.float32))
    scratch = args.keep or Path(tempfile.mkdtemp(prefix="stitch-bench-"))
    reuse = args.keep is not None and (scratch / "edge").exists()
    store = EdgeStore(scratch / "edge")
    try:
        seconds = 0.0 if reuse else build(store, args.chunks, rng, centres)
        qrng = np.random.default_rng(11)
        topics = qrng.integers(0, TOPICS, args.queries)
        dense = _unit(centres[topics] + qrng.normal(0, 0.35, (args.queries, DIM)).astype(np.float32) / np.sqrt(DIM) * 4)
        queries = [(tuple(d.tolist()), _sparse(qrng, 6)) for d in dense]
        result = {"chunks": store.count(), "build_seconds": round(seconds, 1), "reused": reuse,
                  "by_filter": {token: dict(selectivity=share, visible=store.count(acl_tokens=(token,)),
                                            **measure(store, queries, (token,)))
                                for token, share in SELECTIVITY.items()}}
        if args.with_encoder:
            result["query_embed_ms"] = encoder_latency(50)
    finally:
        store.close()
        if args.keep is None:
            shutil.rmtree(scratch, ignore_errors=True)
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
