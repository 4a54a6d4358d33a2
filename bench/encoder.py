"""Query encoding: where one ``encode_query`` spends its time, and what concurrent callers get.

Prints one JSON object. Not a test (wall-clock figures depend on the machine and its load).

    .venv/bin/python bench/encoder.py [--clients 1 8 50] [--seconds 5]

``pieces_ms`` are medians over SciFact test queries run one at a time: the Rust tokenizer, the ONNX
session call, the whole encoder call (pooling/normalising is the rest), and the same query through the
micro-batcher the server uses (``core/batching.py``: a lone caller). ``clients`` are closed-loop threads
calling the batcher for ``--seconds`` each: queries/s, p50/p95 and mean queries per model call.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.batching import BatchingEncoder  # noqa: E402
from core.config import Settings  # noqa: E402
from core.encoder import load_encoder  # noqa: E402

QUERIES = next(p / "shared" / "benchmarks" / "retrieval" / "scifact" / "queries.jsonl"
               for p in ROOT.parents if (p / "shared" / "benchmarks").is_dir())


def median_ms(fn, items: list, rounds: int = 3) -> float:  # noqa: ANN001
    for item in items[:20]:
        fn(item)  # warm-up
    times = []
    for _ in range(rounds):
        for item in items:
            started = time.perf_counter()
            fn(item)
            times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 3)


def pieces(encoder, batcher: BatchingEncoder, queries: list[str]) -> dict:  # noqa: ANN001
    out = {"encoder_call": median_ms(encoder.encode_query, queries),
           "batcher_lone_caller": median_ms(batcher.encode_query, queries)}
    tokenizer = getattr(encoder, "_embed_tok", None)
    session = getattr(encoder, "_query_session", None) or getattr(encoder, "_session", None)
    if tokenizer is not None and session is not None:
        import numpy as np

        out["tokenizer"] = median_ms(lambda q: tokenizer.encode_batch([q]), queries)

        def feeds(q: str) -> dict:
            ids = np.array([tokenizer.encode(q).ids], dtype=np.int64)
            names = {i.name for i in session.get_inputs()}
            return {k: v for k, v in {"input_ids": ids, "attention_mask": np.ones_like(ids),
                                      "token_type_ids": np.zeros_like(ids)}.items() if k in names}

        prepared = [feeds(q) for q in queries]
        out["session_run"] = median_ms(lambda f: session.run(None, f), prepared)
        out["pooling_and_rest"] = round(out["encoder_call"] - out["tokenizer"] - out["session_run"], 3)
    return out


def closed_loop(batcher: BatchingEncoder, queries: list[str], clients: int, seconds: float) -> dict:
    latencies: list[float] = []
    stop = time.perf_counter() + seconds
    batches_before, queries_before = batcher.batches, batcher.queries

    def client(offset: int) -> None:
        i = offset
        while time.perf_counter() < stop:
            started = time.perf_counter()
            batcher.encode_query(queries[i % len(queries)])
            latencies.append((time.perf_counter() - started) * 1000)
            i += clients

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    latencies.sort()
    calls = max(1, batcher.batches - batches_before)
    return {"clients": clients, "queries_per_s": round(len(latencies) / elapsed, 1),
            "p50_ms": round(latencies[len(latencies) // 2], 2), "p95_ms": round(latencies[int(len(latencies) * 0.95)], 2),
            "queries_per_model_call": round((batcher.queries - queries_before) / calls, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", nargs="+", type=int, default=[1, 8, 50])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--queries", type=int, default=300)
    args = parser.parse_args()
    settings = Settings(data_dir=Path("/nonexistent-unused"))
    encoder = load_encoder(settings)
    with QUERIES.open() as handle:
        queries = [json.loads(line)["text"] for line, _ in zip(handle, range(args.queries))]
    batcher = BatchingEncoder(encoder, window_ms=settings.query_batch_window_ms, max_batch=settings.query_batch_max,
                              max_queue=settings.query_queue_max)
    load = round(os.getloadavg()[0], 2)
    result = {"benchmark": "encoder", "backend": settings.encoder_backend, "graph": settings.encoder_graph,
              "window_ms": settings.query_batch_window_ms, "pieces_ms": pieces(encoder, batcher, queries),
              "concurrency": [closed_loop(batcher, queries, c, args.seconds) for c in args.clients]}
    one = next((r["queries_per_s"] for r in result["concurrency"] if r["clients"] == 1), None)
    for row in result["concurrency"]:
        row["vs_one_client_x"] = round(row["queries_per_s"] / one, 2) if one else None
    print(json.dumps(result | {"cpus": os.cpu_count(), "load_avg_1m_start": load,
                               "load_avg_1m_end": round(os.getloadavg()[0], 2)}, indent=2))


if __name__ == "__main__":
    main()
