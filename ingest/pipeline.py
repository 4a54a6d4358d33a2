"""The ingest job: manifests → documents → chunks → vectors → store, recorded in the ledger."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from core.config import Settings
from core.encoder import Encoder
from core.entities import EntityLinker
from core.models import Chunk, Document, StoredChunk
from core.payload import chunk_payload
from core.sparse import sparse_document_vector
from core.store.protocol import VectorStore
from ingest.chunk import ChunkingPolicy, chunk_document
from ingest.ledger import Ledger, LedgerEntry
from ingest.manifest import Manifest
from ingest.report import JobReport
from ingest.sources import SourceFailure, SourceItem, iter_source_items

ProgressFn = Callable[[str, int], None]  # (event "document"|"chunks", amount)


@dataclass(frozen=True)
class IngestContext:
    """Everything one ingest run writes to."""

    settings: Settings
    encoder: Encoder
    store: VectorStore
    ledger: Ledger
    linker: EntityLinker | None = None


@dataclass
class _Pending:
    item: SourceItem
    document: Document
    chunks: list[Chunk]
    existed: bool


def ingest_manifests(
    manifests: Sequence[Manifest], ctx: IngestContext, *, full: bool = False,
    progress: ProgressFn | None = None,
) -> JobReport:
    """Incrementally sync every manifest's source; returns the job report."""
    started = time.perf_counter()
    report = JobReport()
    ctx.store.ensure_collection(ctx.encoder.dimension)
    policy = ChunkingPolicy(ctx.settings.chunk_max_tokens, ctx.settings.chunk_overlap_tokens)
    for manifest in manifests:
        report.sources.append(manifest.source)
        _sync_source(manifest, ctx, policy, report, full=full, progress=progress or (lambda *_: None))
    ctx.store.flush()
    if report.added or report.updated:
        ctx.store.optimize()
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def _sync_source(
    manifest: Manifest, ctx: IngestContext, policy: ChunkingPolicy, report: JobReport, *,
    full: bool, progress: ProgressFn,
) -> None:
    known = ctx.ledger.for_source(manifest.source)
    seen: set[str] = set()
    unidentified_failures = False
    batch: list[_Pending] = []
    batch_chunks = 0
    for item in iter_source_items(manifest):
        if isinstance(item, SourceFailure):
            report.fail(manifest.source, item.label, item.reason)
            unidentified_failures = True
            progress("document", 1)
            continue
        if item.doc_id in seen:
            report.fail(manifest.source, item.label, f"duplicate document id {item.doc_id!r}")
            continue
        seen.add(item.doc_id)
        entry = known.get(item.doc_id)
        if entry and entry.fingerprint == item.fingerprint and not full:
            report.unchanged += 1
            report.invisible += int(entry.invisible)
            progress("document", 1)
            continue
        try:
            document = item.load()
            chunks = chunk_document(document, ctx.encoder, policy)
        except Exception as exc:  # noqa: BLE001 - one bad input never stops the job
            report.fail(manifest.source, item.label, str(exc) or type(exc).__name__)
            progress("document", 1)
            continue
        batch.append(_Pending(item, document, chunks, existed=entry is not None))
        batch_chunks += len(chunks)
        if batch_chunks >= ctx.settings.embed_batch_size * 8:
            _write_batch(batch, ctx, report, progress)
            batch, batch_chunks = [], 0
    _write_batch(batch, ctx, report, progress)
    gone = [doc_id for doc_id in known if doc_id not in seen]
    if gone and unidentified_failures:
        report.warnings.append(
            f"{manifest.source}: {len(gone)} document(s) not seen but kept, because some rows "
            "could not be read; fix them and re-run to delete"
        )
        return
    for doc_id in gone:
        ctx.store.delete_document(doc_id)
        ctx.ledger.forget(doc_id)
        report.deleted += 1


def _write_batch(batch: list[_Pending], ctx: IngestContext, report: JobReport, progress: ProgressFn) -> None:
    if not batch:
        return
    texts = [c.embed_text for p in batch for c in p.chunks]
    dense = ctx.encoder.encode_passages(texts)
    row = 0
    for pending in batch:
        stored = []
        entity_ids = ctx.linker.link_document(pending.document) if ctx.linker else ()
        for chunk in pending.chunks:
            payload = chunk_payload(pending.document, chunk, chunk_count=len(pending.chunks), entity_ids=entity_ids)
            stored.append(
                StoredChunk(chunk.chunk_id, tuple(dense[row].tolist()), sparse_document_vector(chunk.embed_text), payload)
            )
            row += 1
        ids = tuple(c.chunk_id for c in pending.chunks)
        ctx.store.upsert(stored)
        ctx.store.delete_document(pending.document.doc_id, keep=ids)
        progress("chunks", len(stored))
    ctx.store.flush()  # durable before the ledger says so
    for pending in batch:
        doc = pending.document
        invisible = not doc.acl
        ctx.ledger.record(
            LedgerEntry(doc.doc_id, doc.source, pending.item.fingerprint, tuple(c.chunk_id for c in pending.chunks), invisible)
        )
        report.chunks += len(pending.chunks)
        report.invisible += int(invisible)
        if pending.existed:
            report.updated += 1
        else:
            report.added += 1
        progress("document", 1)
