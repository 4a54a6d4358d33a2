"""Ingest throughput: the whole pipeline next to raw encoder throughput on the same chunk texts.

Prints one JSON object. Not a test (wall-clock figures depend on the machine and its load).

    .venv/bin/python bench/ingest.py --backends torch onnx-int8 [--limit N] [--no-linker]

The pipeline runs as ``stitch ingest`` does, entity linking included (the registry in the case's data dir,
its pass over stored documents at the end of the job too); ``--no-linker`` leaves linking out, which is how
this bench ran until 2026-12-03 and why its SciFact figure (150 s) was not what an ingest took (365 s).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.config import Settings  # noqa: E402
from core.encoder import load_encoder  # noqa: E402
from core.store.edge import EdgeStore  # noqa: E402
from entity_resolution.linker import linker_for  # noqa: E402
from ingest.chunk import ChunkingPolicy, chunk_document  # noqa: E402
from ingest.ledger import Ledger  # noqa: E402
from ingest.manifest import load_manifest  # noqa: E402
from ingest.pipeline import IngestContext, ingest_manifests  # noqa: E402
from ingest.sources import SourceItem, iter_source_items  # noqa: E402

SCIFACT = Path(__file__).resolve().parents[2] / "shared" / "benchmarks" / "retrieval" / "scifact" / "corpus.jsonl"


def scifact_manifest(workdir: Path, limit: int | None) -> Path:
    """A records manifest next to a copy of the corpus (its first ``limit`` lines when given); a symlink
    would be refused, since manifests may not read outside their folder."""
    corpus = workdir / "corpus.jsonl"
    with SCIFACT.open() as src, corpus.open("w") as dst:
        for _, line in zip(range(limit or 1 << 62), src):
            dst.write(line)
    manifest = workdir / "scifact.yaml"
    manifest.write_text("source: scifact\nkind: records\npath: corpus.jsonl\nid_field: _id\ntitle_field: title\n"
                        "text_fields: [text]\nacl: {public: true}\n")
    return manifest


def chunk_texts(manifests: list[Path], encoder, settings: Settings) -> list[str]:  # noqa: ANN001
    policy = ChunkingPolicy(settings.chunk_max_tokens, settings.chunk_overlap_tokens)
    texts = []
    for manifest in manifests:
        for item in iter_source_items(load_manifest(manifest)):
            if isinstance(item, SourceItem):
                try:
                    texts += [c.embed_text for c in chunk_document(item.load(), encoder, policy)]
                except Exception:  # noqa: BLE001, S112 - failures are counted by the pipeline run
                    continue
    return texts


def raw_encode_seconds(encoder, texts: list[str], batch: int) -> float:  # noqa: ANN001
    started = time.perf_counter()
    for start in range(0, len(texts), batch):
        encoder.encode_passages(texts[start : start + batch])
    return time.perf_counter() - started


def run_case(name: str, manifests: list[Path], backend: str, workdir: Path, *, linker: bool = True) -> dict:
    settings = Settings(data_dir=workdir / f"data-{name}-{backend}", encoder_backend=backend)
    loaded = time.perf_counter()
    encoder = load_encoder(settings)
    load_seconds = time.perf_counter() - loaded
    prepared = time.perf_counter()
    texts = chunk_texts(manifests, encoder, settings)  # read, partition, clean, chunk: the non-encoder CPU
    prepare_seconds = time.perf_counter() - prepared
    truncated = sum(n > encoder.max_tokens for n in encoder.count_tokens(texts))
    raw = raw_encode_seconds(encoder, texts, settings.embed_batch_size * 8)
    store, ledger = EdgeStore(settings.qdrant_path), Ledger(settings.ledger_path)
    registry = linker_for(settings) if linker else None
    ctx = IngestContext(settings, encoder, store, ledger, linker=registry)
    loaded_manifests = [load_manifest(m) for m in manifests]
    first = ingest_manifests(loaded_manifests, ctx)
    again = ingest_manifests(loaded_manifests, ctx)
    store.close()
    ledger.close()
    if registry is not None:
        registry.store.close()
    docs = first.added + first.updated
    return {
        "case": name, "backend": backend, "linker": linker, "encoder_load_s": round(load_seconds, 2),
        "documents": docs, "chunks": first.chunks, "failed": first.failed,
        "pipeline_s": first.seconds, "documents_per_s": round(docs / first.seconds, 1),
        "chunks_per_s": round(first.chunks / first.seconds, 1),
        "prepare_s": round(prepare_seconds, 2), "raw_encode_s": round(raw, 2), "raw_passages_per_s": round(len(texts) / raw, 1),
        "pipeline_overhead_pct": round(100 * (first.seconds / raw - 1), 1),
        "truncated_chunks_pct": round(100 * truncated / max(1, len(texts)), 3),
        "rerun_unchanged_s": again.seconds, "rerun_unchanged": again.unchanged,
        "rerun_speedup_x": round(first.seconds / max(again.seconds, 1e-6), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backends", nargs="+", default=["torch", "onnx-int8"])
    parser.add_argument("--limit", type=int, default=None, help="first N SciFact documents (default: all)")
    parser.add_argument("--cases", nargs="+", default=["fixtures", "scifact"])
    parser.add_argument("--no-linker", action="store_true", help="leave entity linking out of the pipeline")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="stitch-bench-ingest-"))
    results = []
    try:
        for backend in args.backends:
            if "fixtures" in args.cases:
                fixtures = sorted((ROOT / "fixtures" / "manifests").glob("*.yaml"))
                results.append(run_case("fixtures", fixtures, backend, workdir, linker=not args.no_linker))
            if "scifact" in args.cases:
                sub = workdir / f"scifact-{backend}"
                sub.mkdir()
                results.append(run_case("scifact", [scifact_manifest(sub, args.limit)], backend, workdir,
                                        linker=not args.no_linker))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps({"benchmark": "ingest", "limit": args.limit, "results": results, "cpus": os.cpu_count(),
                      "load_avg_1m": round(os.getloadavg()[0], 2)}, indent=2))


if __name__ == "__main__":
    main()
