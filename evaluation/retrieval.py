"""``stitch eval retrieval DIR``: ingest a BEIR dataset the way ``stitch ingest`` does, run its
test queries through the ``/v1/search`` path, and report ranking quality and latency.

A document's score is its best chunk's (chunk hits are deduplicated by document in rank order).
"""

from __future__ import annotations

import csv
import json
import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from core import payload as P
from core.config import Settings, get_settings
from core.errors import InputError
from core.models import Hit, Principal
from ingest.manifest import AclSpec, Manifest
from evaluation.metrics import Qrels, evaluate_run, percentile
from retrieval.context import ContextRequest, Retriever
from retrieval.search import SearchPlan

SOURCE = "beir"
CHUNK_DEPTH = 200  # chunk hits fetched per query: enough distinct documents for Recall@100
CONTEXT_SAMPLE = 100  # queries also sent through the /v1/context path for its latency
_PRINCIPAL = Principal("eval", ())


@dataclass(frozen=True)
class BeirSet:
    """Queries and relevance judgements of one BEIR-layout directory."""

    directory: Path
    queries: dict[str, str]
    qrels: dict[str, Qrels]  # split name -> judgements


def _read_qrels(path: Path) -> Qrels:
    judged: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.reader(handle, delimiter="\t"):
            if len(row) < 3 or row[0] == "query-id":
                continue
            judged.setdefault(row[0], {})[row[1]] = int(row[2])
    return judged


def load_beir(directory: Path) -> BeirSet:
    """Read queries.jsonl and every qrels/*.tsv; corpus.jsonl is read by ingest itself."""
    directory = Path(directory)
    for needed in ("corpus.jsonl", "queries.jsonl", "qrels/test.tsv"):
        if not (directory / needed).exists():
            raise InputError(f"{directory}: missing {needed} (BEIR layout expected)")
    queries = {}
    with (directory / "queries.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                row = json.loads(line)
                queries[str(row["_id"])] = str(row["text"])
    qrels = {p.stem: _read_qrels(p) for p in sorted((directory / "qrels").glob("*.tsv"))}
    return BeirSet(directory, queries, qrels)


def beir_manifest(directory: Path) -> Manifest:
    """The records manifest a data steward would write next to ``corpus.jsonl`` (public documents).

    Built in memory because the dataset folder may be read-only; it goes through the same
    validation as a manifest file."""
    return Manifest(
        source=SOURCE, kind="records", path="corpus.jsonl", id_field="_id", title_field="title",
        text_fields=("text",), acl=AclSpec(public=True), manifest_path=Path(directory).resolve() / "beir.yaml",
    )


def eval_settings(data_dir: Path, base: Settings | None = None) -> Settings:
    """The deployment's settings pointed at a scratch embedded collection."""
    base = base or get_settings()
    return base.model_copy(update={"data_dir": Path(data_dir), "qdrant_url": None, "collection": "beir"})


def build_index(directory: Path, settings: Settings):  # noqa: ANN201 - api.services.Services
    """Ingest ``directory``'s corpus with the ``stitch ingest`` code path; returns (services, seconds, report)."""
    from api.services import Services
    from ingest.pipeline import ingest_manifests

    manifest = beir_manifest(directory)
    services = Services(settings)
    started = time.perf_counter()
    report = ingest_manifests([manifest], services.ingest_context())
    return services, time.perf_counter() - started, report


def rank_documents(hits: list[Hit], depth: int = 100) -> list[str]:
    """Native document ids in order of their best chunk, at most ``depth``."""
    seen: dict[str, None] = {}
    for hit in hits:
        native = str(hit.payload[P.DOC_ID]).split(":", 1)[-1]
        seen.setdefault(native, None)
        if len(seen) >= depth:
            break
    return list(seen)


def run_queries(retriever: Retriever, queries: Mapping[str, str]) -> tuple[dict[str, list[str]], list[float]]:
    """Doc rankings per query and per-query latency (ms) through ``Retriever.search``."""
    run, latencies = {}, []
    for qid, text in queries.items():
        started = time.perf_counter()
        hits, _ = retriever.search(ContextRequest(text, _PRINCIPAL), limit=CHUNK_DEPTH)
        latencies.append((time.perf_counter() - started) * 1000)
        run[qid] = rank_documents(hits)
    return run, latencies


def context_packs(
    retriever: Retriever, queries: Mapping[str, str], qrels: Qrels
) -> tuple[list[float], dict[str, float]]:
    """Latency (ms) of full context packs (search, stitch, dedupe, pack) through ``Retriever.context``,
    and how much of the judged-relevant material the packs carry."""
    latencies, recalls, tokens, passages = [], [], [], []
    for qid, text in queries.items():
        started = time.perf_counter()
        pack = retriever.context(ContextRequest(text, _PRINCIPAL, top_k=8, max_tokens=2000))
        latencies.append((time.perf_counter() - started) * 1000)
        shown = {p.doc_id.split(":", 1)[-1] for p in pack.passages}
        wanted = {d for d, g in qrels.get(qid, {}).items() if g > 0}
        recalls.append(len(shown & wanted) / len(wanted) if wanted else 0.0)
        tokens.append(pack.tokens)
        passages.append(len(pack.passages))
    n = max(1, len(queries))
    quality = {"doc_recall": round(sum(recalls) / n, 4), "mean_tokens": round(sum(tokens) / n, 1),
               "mean_passages": round(sum(passages) / n, 2)}
    return latencies, quality


def _latency(values: list[float]) -> dict[str, float]:
    return {"p50": round(percentile(values, 50), 2), "p95": round(percentile(values, 95), 2)}


def evaluate_split(
    retriever: Retriever, beir: BeirSet, *, split: str = "test", plan: SearchPlan | None = None
) -> dict:
    """Metrics and latency of one qrels split with an already built index."""
    if split not in beir.qrels:
        raise InputError(f"{beir.directory}: no qrels/{split}.tsv")
    if plan is not None:
        retriever.plan = plan
    qrels = beir.qrels[split]
    queries = {q: beir.queries[q] for q in qrels if q in beir.queries}
    retriever.search(ContextRequest("warm up", _PRINCIPAL), limit=10)
    run, latencies = run_queries(retriever, queries)
    sample = dict(list(queries.items())[:CONTEXT_SAMPLE])
    ctx, pack_quality = context_packs(retriever, sample, qrels)
    return {
        "split": split,
        "queries": len(queries),
        "metrics": evaluate_run(qrels, run),
        "latency_ms": {"search": _latency(latencies), "context": _latency(ctx)},
        "context_pack": dict(pack_quality, queries=len(sample), top_k=8, max_tokens=2000),
        "plan": _plan_json(retriever.plan),
    }


def _plan_json(plan: SearchPlan) -> dict:
    return asdict(plan)  # nested Feedback becomes a dict; tuples serialise as JSON lists


def run_retrieval_eval(
    directory: Path, *, data_dir: Path | None = None, split: str = "test", plan: SearchPlan | None = None,
    settings: Settings | None = None,
) -> dict:
    """Ingest into a scratch data dir (kept and reused when ``data_dir`` is given) and evaluate ``split``."""
    beir = load_beir(Path(directory))
    scratch = Path(data_dir) if data_dir else Path(tempfile.mkdtemp(prefix="stitch-eval-"))
    settings = eval_settings(scratch, settings)
    services = None
    try:
        services, seconds, report = build_index(beir.directory, settings)
        result = evaluate_split(services.retriever, beir, split=split, plan=plan)
        result.update(
            dataset=beir.directory.name,
            corpus={"documents": report.added + report.updated + report.unchanged, "chunks": services.store.count(),
                    "failed": report.failed, "reused": report.unchanged},
            index_build_seconds=round(seconds, 2),
            encoder=f"{services.encoder.name} ({settings.encoder_backend})",
        )
        return result
    finally:
        if services is not None:
            from core.store.factory import close_store

            close_store(settings)
        if data_dir is None:
            shutil.rmtree(scratch, ignore_errors=True)


def format_retrieval_table(result: dict) -> str:
    """A small human table of one evaluation result."""
    m, lat = result["metrics"], result["latency_ms"]
    rows = [
        f"dataset {result.get('dataset', '?')}  split {result['split']}  queries {result['queries']}",
        f"  nDCG@10    {m['ndcg@10']:.4f}",
        f"  Recall@10  {m['recall@10']:.4f}",
        f"  Recall@100 {m['recall@100']:.4f}",
        f"  MRR@10     {m['mrr@10']:.4f}",
        f"  MAP@100    {m['map']:.4f}",
        f"  search  p50 {lat['search']['p50']:.1f} ms  p95 {lat['search']['p95']:.1f} ms",
        f"  context p50 {lat['context']['p50']:.1f} ms  p95 {lat['context']['p95']:.1f} ms",
        f"  context pack (top_k 8, 2000 tokens): relevant-doc recall {result['context_pack']['doc_recall']:.4f}",
        f"  index build {result.get('index_build_seconds', 0):.1f} s  chunks {result.get('corpus', {}).get('chunks', '?')}",
    ]
    return "\n".join(rows)


def compare_plans(
    retriever: Retriever, beir: BeirSet, plans: Mapping[str, SearchPlan], *, split: str = "train"
) -> dict[str, dict[str, float]]:
    """Metrics of several search plans on one split, each query encoded once (for tuning on train)."""
    from core.access import principal_tokens
    from retrieval.search import encode_query, search_chunks

    qrels = beir.qrels[split]
    vectors = {q: encode_query(retriever.encoder, beir.queries[q]) for q in qrels if q in beir.queries}
    tokens = principal_tokens(_PRINCIPAL)
    out = {}
    for name, plan in plans.items():
        run = {
            q: rank_documents(search_chunks(retriever.store, v, acl_tokens=tokens, limit=CHUNK_DEPTH, plan=plan))
            for q, v in vectors.items()
        }
        out[name] = evaluate_run(qrels, run)
    return out
