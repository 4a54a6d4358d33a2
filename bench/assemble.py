"""In-process /v1/context benchmark: where one request's time goes (embed, search, assemble), no HTTP.

    nice -n 10 .venv/bin/python -m bench.assemble --requests 240 --profile

Ingests a manifest (the fixture wiki by default) into a scratch data dir (or reuses ``--data``), then
calls ``Retriever.context`` ``--requests`` times, cycling the queries and roles of bench/api.py, and
prints one JSON object: p50/p95 of the total and of each phase the pack reports (``timings_ms``), and
``cpu``: the process's CPU time per ``context()`` call, every thread included (the query encoder's batching
thread too), which is the figure to compare on a shared machine.
``--beir DIR --data INDEX`` instead times BEIR test queries on an index that ``stitch eval retrieval``
built (e.g. SciFact, 10,801 chunks: issue 13's "in-process /v1/context p95 ≤ 15 ms"), as its evaluation
principal sees it. ``--profile`` also runs the requests once more under cProfile and reports the calls per request and
cumulative ms per request of the assemble stage's known hot spots (token counting, untrusted-text
flags, BM25 document vectors, near-duplicate checks).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import tempfile
import time
from pathlib import Path

from api.services import Services
from bench.api import QUERIES
from core.config import Settings
from core.models import Principal
from evaluation.metrics import percentile
from ingest.manifest import load_manifest
from ingest.pipeline import ingest_manifests
from retrieval.context import ContextRequest, Retriever

ROOT = Path(__file__).resolve().parent.parent
HOT_SPOTS = ("count_tokens", "count_joined", "_count_plain", "passage_flags", "sparse_document_vector", "_near_duplicate",
             "_hit", "replace")


def _requests(n: int, beir: Path | None = None) -> list[ContextRequest]:
    if beir is not None:
        from evaluation.retrieval import _PRINCIPAL, load_beir

        data = load_beir(beir)
        queries = [data.queries[q] for q in data.qrels["test"] if q in data.queries]
        return [ContextRequest(queries[i % len(queries)], _PRINCIPAL) for i in range(n)]
    return [ContextRequest(q, Principal(id="", roles=tuple(roles)))
            for q, roles in (QUERIES[i % len(QUERIES)] for i in range(n))]


def _retriever(manifest: Path, data: Path, beir: Path | None = None) -> Retriever:
    if beir is not None:
        from evaluation.retrieval import eval_settings

        return Services(eval_settings(data)).retriever
    services = Services(Settings(data_dir=data))
    if not any(data.glob("*ledger*")):
        ingest_manifests([load_manifest(manifest)], services.ingest_context())
    return services.retriever


def _stats(values: list[float]) -> dict:
    return {"p50": round(percentile(values, 50), 2), "p95": round(percentile(values, 95), 2)}


def measure(retriever: Retriever, n: int, beir: Path | None = None) -> dict:
    """Phase timings over ``n`` requests, after one warm-up round of every distinct request among them (with
    ``--beir`` that is every test query, not only the first few: a cold shard's pages are read from disk on first
    touch, which put 3 ms on the p95 of the first 300 SciFact requests in a new process)."""
    requests = _requests(n, beir)
    for request in {(r.query, r.principal): r for r in requests}.values():
        retriever.context(request)
    phases: dict[str, list[float]] = {}
    for request in requests:
        cpu = time.process_time()
        timings = retriever.context(request).timings_ms
        phases.setdefault("cpu", []).append((time.process_time() - cpu) * 1000)
        for phase, ms in timings.items():
            phases.setdefault(phase, []).append(ms)
    return {phase: _stats(values) for phase, values in phases.items()}


def profile(retriever: Retriever, n: int, beir: Path | None = None) -> dict:
    """Calls and cumulative ms per request of the hot spots, under cProfile."""
    requests = _requests(n, beir)
    profiler = cProfile.Profile()
    profiler.enable()
    for request in requests:
        retriever.context(request)
    profiler.disable()
    found: dict[str, dict] = {}
    for (file, _, name), (_, calls, _, cumulative, _) in pstats.Stats(profiler).stats.items():
        if name in HOT_SPOTS and ("stitch" in file or "/work" in file or name == "replace"):
            entry = found.setdefault(name, {"calls_per_request": 0.0, "ms_per_request": 0.0})
            entry["calls_per_request"] = round(entry["calls_per_request"] + calls / n, 1)
            entry["ms_per_request"] = round(entry["ms_per_request"] + cumulative * 1000 / n, 2)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", type=Path, default=ROOT / "fixtures" / "manifests" / "wiki.yaml")
    parser.add_argument("--data", type=Path, help="data dir to reuse (ingested on first use); default: scratch")
    parser.add_argument("--requests", type=int, default=240)
    parser.add_argument("--beir", type=Path, help="a BEIR set whose test queries to time on --data (an eval index)")
    parser.add_argument("--profile", action="store_true", help="also report cProfile calls of the hot spots")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="stitch-assemble-") as scratch:
        if args.beir and not args.data:
            parser.error("--beir needs --data: the index `stitch eval retrieval` built for it")
        retriever = _retriever(args.manifest, args.data or Path(scratch), args.beir)
        out = {"requests": args.requests, "corpus": str(args.beir or args.manifest),
               "phases_ms": measure(retriever, args.requests, args.beir), "load_avg_1m": round(os.getloadavg()[0], 2)}
        if args.profile:
            out["profile"] = profile(retriever, min(args.requests, 80), args.beir)
        retriever.store.close()
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
