"""Quality parity of encoder backends: SciFact test nDCG@10 (dense and hybrid) and the fixture eval.

Prints one JSON object. Each backend ingests SciFact into its own scratch index (kept under --workdir
so a re-run reuses it), then every plan is scored on the same split.

    .venv/bin/python -m bench.parity --backends onnx-int8 torch [--workdir /tmp/stitch-parity]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from core.config import Settings
from evaluation.metrics import percentile
from evaluation.retrieval import build_index, compare_plans, context_packs, eval_settings, load_beir
from retrieval.search import SearchPlan

SCIFACT = next(p / "shared" / "benchmarks" / "retrieval" / "scifact" for p in Path(__file__).resolve().parents
               if (p / "shared" / "benchmarks").is_dir())


def scifact(backend: str, workdir: Path) -> dict:
    settings = eval_settings(workdir / backend, Settings(encoder_backend=backend))
    services, seconds, report = build_index(SCIFACT, settings)
    beir = load_beir(SCIFACT)
    base = SearchPlan.from_settings(settings)
    plans = {mode: SearchPlan(mode=mode, prefetch_limit=base.prefetch_limit, fusion=base.fusion, rrf_k=base.rrf_k)
             for mode in ("dense", "hybrid")}
    scores = compare_plans(services.retriever, beir, plans, split="test")
    queries = {q: beir.queries[q] for q in list(beir.qrels["test"])[:100] if q in beir.queries}
    context_ms, _ = context_packs(services.retriever, queries, beir.qrels["test"])  # in-process /v1/context path
    from core.store.factory import close_store

    chunks = services.store.count()
    close_store(settings)
    return {"chunks": chunks, "index_build_seconds": round(seconds, 1), "reused": report.unchanged,
            **{f"{mode}_ndcg@10": round(m["ndcg@10"], 4) for mode, m in scores.items()},
            "context_ms": {"p50": round(percentile(context_ms, 50), 2), "p95": round(percentile(context_ms, 95), 2)}}


def fixtures(backend: str, workdir: Path) -> dict:
    from core.encoder import load_encoder
    from evaluation.suite import run_all

    encoder = load_encoder(Settings(data_dir=workdir / "unused", encoder_backend=backend))
    report = run_all(workdir / f"fixtures-{backend}", modes=("hybrid", "dense"), encoder=encoder)
    return {mode: {k: round(v, 4) for k, v in m.items() if k in ("recall@3", "recall@10", "ndcg@10")}
            for mode, m in report["retrieval"]["modes"].items()} | {"leaks": report["access_control"]["leaks"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["onnx-int8", "torch"])
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "stitch-parity")
    parser.add_argument("--skip-scifact", action="store_true")
    parser.add_argument("--skip-fixtures", action="store_true")
    args = parser.parse_args(argv)
    out = {}
    for backend in args.backends:
        out[backend] = {} if args.skip_fixtures else {"fixtures": fixtures(backend, args.workdir)}
        if not args.skip_scifact:
            out[backend]["scifact_test"] = scifact(backend, args.workdir)
        sys.stderr.write(json.dumps({backend: out[backend]}) + "\n")  # each backend as soon as it is done
    sys.stdout.write(json.dumps(out) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
