"""Does the embedded engine let other Python threads run while it searches? (issue 13)

    .venv/bin/python bench/store_gil.py --points 20000

Builds a throw-away qdrant-edge shard of random 384-d vectors (with a small payload) and measures,
over the same exact searches: (1) searches per second from 1, 2 and 4 threads (if the engine released
the GIL, 2 threads would do more than 1 on a 2-core machine); (2) how far a pure-Python
counter thread gets while the main thread searches, against the same counter alone (1.0 = the search
never holds the GIL, ~0.5 = the two take turns). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time

import numpy as np
import qdrant_edge as qe


def _shard(points: int, seed: int) -> tuple[qe.EdgeShard, list[list[float]]]:
    cfg = qe.EdgeConfig(vectors={"dense": qe.EdgeVectorParams(size=384, distance=qe.Distance.Cosine)})
    shard = qe.EdgeShard.create(tempfile.mkdtemp(prefix="stitch-gil-"), cfg)
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((points, 384)).astype(np.float32)
    for start in range(0, points, 1000):
        shard.update(qe.UpdateOperation.upsert_points([
            qe.Point(i, {"dense": vectors[i].tolist()}, {"acl": [f"role:r{i % 10}"]})
            for i in range(start, min(points, start + 1000))]))
    return shard, [rng.standard_normal(384).tolist() for _ in range(64)]


def _searcher(shard: qe.EdgeShard, queries: list[list[float]]):  # noqa: ANN202
    def search(i: int) -> None:
        shard.query(qe.QueryRequest(limit=10, query=qe.Query.Nearest(queries[i % len(queries)], using="dense"),
                                    with_payload=True, params=qe.SearchParams(exact=True)))
    return search


def _throughput(search, threads: int, per_thread: int) -> float:  # noqa: ANN001
    workers = [threading.Thread(target=lambda k=k: [search(k * per_thread + i) for i in range(per_thread)])
               for k in range(threads)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return threads * per_thread / (time.perf_counter() - started)


def _counter_share(search, seconds: float) -> float:  # noqa: ANN001
    """Counter progress while the main thread searches, over its progress while the main thread sleeps."""
    stop, count = threading.Event(), [0]

    def spin() -> None:
        while not stop.is_set():
            count[0] += 1

    thread = threading.Thread(target=spin)
    thread.start()
    before = count[0]
    time.sleep(seconds)
    alone = count[0] - before
    before, started, i = count[0], time.perf_counter(), 0
    while time.perf_counter() - started < seconds:
        search(i)
        i += 1
    during = count[0] - before
    stop.set()
    thread.join()
    return during / max(alone, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=20000)
    parser.add_argument("--queries", type=int, default=400, help="searches per thread count")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    shard, queries = _shard(args.points, args.seed)
    search = _searcher(shard, queries)
    search(0)
    rates = {str(t): round(_throughput(search, t, args.queries // t), 1) for t in (1, 2, 4)}
    print(json.dumps({
        "points": args.points, "searches_per_s_by_threads": rates,
        "two_threads_vs_one": round(rates["2"] / rates["1"], 2),
        "counter_share_while_searching": round(_counter_share(search, 1.0), 2),
        "cpus": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2),
    }))


if __name__ == "__main__":
    main()
