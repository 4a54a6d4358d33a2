"""The ingest job: manifests → documents → chunks → vectors → store, recorded in the ledger.

Crash safety (a run killed at any instant, even by SIGKILL, is repaired by the next run):
a batch's documents are marked *pending* in the ledger before their chunks are written; chunk ids
are deterministic, so re-writing them is idempotent; a document's ledger row (and the end of its
pending mark) is written only after its chunks are flushed. The next run re-processes every
pending document, and deletes the chunks of pending documents that have left the source.
"""

from __future__ import annotations

import copy
import hashlib
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import TypeVar

import numpy as np

from core.config import Settings
from core.encoder import Encoder
from core.entities import EntityLinker
from core.errors import InputError, NotFoundError
from core.models import Chunk, Document, SparseVector, StoredChunk
from core.payload import ACL, ACL_ORIGIN, chunk_payload
from core.sparse import sparse_document_vector
from core.store.protocol import VectorStore
from ingest.chunk import ChunkingPolicy, TokenCounter, chunk_document
from ingest.guards import check_sync_allowed, claim_source
from ingest.ledger import Ledger, LedgerEntry
from ingest.manifest import Manifest, check_distinct_sources
from ingest.prefetch import Outcome, prefetch_map
from ingest.report import JobReport
from ingest.sources import SourceFailure, SourceItem, iter_source_items
from governance.redaction import mask_for_index, policy_digest, rules_of

T = TypeVar("T")
ProgressFn = Callable[[str, int], None]  # (event "total"|"document"|"chunks", amount)


@dataclass(frozen=True)
class IngestContext:
    """Everything one ingest run writes to."""

    settings: Settings
    encoder: Encoder
    store: VectorStore
    ledger: Ledger
    linker: EntityLinker | None = None


@dataclass(frozen=True)
class _Prepared:
    item: SourceItem
    document: Document
    chunks: list[Chunk]
    sparse: list[SparseVector]
    existed: bool  # in the ledger
    may_have_chunks: bool  # in the ledger or pending: stale chunks may exist and must be deleted


@dataclass(frozen=True)
class _Job:
    ctx: IngestContext
    policy: ChunkingPolicy
    version: str
    report: JobReport
    progress: ProgressFn
    full: bool
    redaction: tuple = ()  # governance.redaction.RedactionRule of the manifest being synced


class _PrivateTokenCounter:
    """A copy of the encoder's tokenizer for the prefetch thread: HF fast tokenizers are not
    thread-safe (padding state is shared), and the main thread is tokenizing inside ``encode``."""

    def __init__(self, tokenizer) -> None:  # noqa: ANN001 - a transformers tokenizer
        self._tokenizer = copy.deepcopy(tokenizer)
        self._tokenizer.model_max_length = 1 << 30  # counting long text is the point: no "too long" warnings

    def count_tokens(self, texts: list[str]) -> list[int]:
        encoded = self._tokenizer(texts, add_special_tokens=False, truncation=False)["input_ids"]
        return [len(ids) for ids in encoded]


def processing_version(encoder: Encoder, policy: ChunkingPolicy) -> str:
    """What besides the input decides the vectors: a change re-embeds every document."""
    return f"{encoder.name}|{encoder.dimension}|{policy.max_tokens}|{policy.overlap_tokens}|{policy.merge_below_tokens}"


def _stored_fingerprint(item: SourceItem, version: str) -> str:
    return hashlib.sha256(f"{item.fingerprint}\x1f{version}".encode()).hexdigest()[:40]


def ingest_manifests(
    manifests: Sequence[Manifest], ctx: IngestContext, *, full: bool = False,
    progress: ProgressFn | None = None, take_over: bool = False, allow_mass_delete: bool = False,
) -> JobReport:
    """Incrementally sync every manifest's source; returns the job report.

    Refused before anything is written (SyncRefusedError): a source owned by another manifest
    without ``take_over``, a sync deleting more than ``max_delete_share`` without ``allow_mass_delete``.
    """
    started = time.perf_counter()
    check_distinct_sources(list(manifests))
    report = JobReport()
    ctx.store.ensure_collection(ctx.encoder.dimension)
    policy = ChunkingPolicy(ctx.settings.chunk_max_tokens, ctx.settings.chunk_overlap_tokens)
    job = _Job(ctx, policy, processing_version(ctx.encoder, policy), report, progress or (lambda *_: None), full)
    listed = [(m, list(iter_source_items(m, max_file_bytes=ctx.settings.max_file_bytes))) for m in manifests]
    check_sync_allowed(listed, ctx.ledger, max_delete_share=ctx.settings.max_delete_share,
                       take_over=take_over, allow_mass_delete=allow_mass_delete)
    job.progress("total", sum(len(items) for _, items in listed))
    for manifest, items in listed:
        report.sources.append(manifest.source)
        claim_source(manifest, ctx.ledger, report)
        _sync_source(manifest, items, job)
    if ctx.linker is not None:  # names learned by this job reach documents read before them
        ctx.linker.relink(ctx.store, mask=lambda text, rules: mask_for_index(text, rules_of(rules)))
    ctx.store.flush()
    if report.added or report.updated:
        ctx.store.optimize()
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def remove_source(source: str, store: VectorStore, ledger: Ledger, linker: EntityLinker | None = None) -> JobReport:
    """Delete every document of ``source`` — chunks, ledger rows, entity mentions and the names only it
    gave — and free the source name; the steward's explicit act (``stitch sources remove``), so no
    delete guard applies, and no model: nothing is encoded. Raises NotFoundError for a name nothing is
    indexed under."""
    started = time.perf_counter()
    doc_ids = sorted({*ledger.for_source(source), *ledger.pending(source)})
    if not doc_ids and ledger.source_owner(source) is None:
        raise NotFoundError(f"source {source!r}: nothing is indexed under that name (see `stitch sources list`)")
    report = JobReport(sources=[source])
    _forget_documents(source, doc_ids, store, ledger, linker, report)
    ledger.release_source(source)
    store.flush()
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def _sync_source(manifest: Manifest, items: list[SourceItem | SourceFailure], job: _Job) -> None:
    rules = tuple(spec.rule() for spec in manifest.redact)
    if rules:  # a policy change re-processes every document of the source
        job = replace(job, version=f"{job.version}|redact:{policy_digest(rules)}", redaction=rules)
    ledger, report = job.ctx.ledger, job.report
    known = ledger.for_source(manifest.source)
    pending = ledger.pending(manifest.source)
    seen: set[str] = set()
    unidentified_failures = False
    todo: list[tuple[SourceItem, bool, bool]] = []
    _apply_acl_changes(items, known, pending, job)
    for item in items:
        if isinstance(item, SourceFailure):
            report.fail(manifest.source, item.label, item.reason)
            unidentified_failures |= item.doc_id is None
            # a failed known file keeps its chunks; a link leaving the source folder loses them
            seen.update([item.doc_id] if item.doc_id and not item.outside else [])
            job.progress("document", 1)
            continue
        if item.doc_id in seen:
            report.fail(manifest.source, item.label, f"duplicate document id {item.doc_id!r}")
            job.progress("document", 1)
            continue
        seen.add(item.doc_id)
        report.acl_defaulted += int(item.acl_defaulted)
        entry = known.get(item.doc_id)
        fresh = entry and entry.fingerprint == _stored_fingerprint(item, job.version)
        if fresh and not job.full and item.doc_id not in pending:
            report.unchanged += 1
            report.invisible += int(entry.invisible)
            job.progress("document", 1)
            continue
        todo.append((item, entry is not None, entry is not None or item.doc_id in pending))
    _process(todo, job)
    _delete_gone(manifest.source, [d for d in {*known, *pending} if d not in seen], job,
                 keep_all=unidentified_failures)


def _apply_acl_changes(items: list, known: dict[str, LedgerEntry], pending: set[str], job: _Job) -> None:
    """ACL is a document-level fact: apply a changed ACL to the stored chunks and the entity registry by
    payload update before any content is re-read, so a narrowing holds even when the re-parse then fails."""
    changed = [
        (item.doc_id, item.acl, item.acl_origin) for item in items
        if item.doc_id and item.acl is not None
        and (item.doc_id in pending or (item.doc_id in known and known[item.doc_id].acl != item.acl))
    ]
    for doc_id, acl, origin in changed:
        job.ctx.store.set_document_payload(doc_id, {ACL: list(acl), ACL_ORIGIN: origin})
        if job.ctx.linker is not None:
            job.ctx.linker.set_document_acl(doc_id, acl)
    if changed:
        job.ctx.store.flush()
    for doc_id, acl, _ in changed:
        job.ctx.ledger.set_acl(doc_id, acl)


def _delete_gone(source: str, gone: list[str], job: _Job, *, keep_all: bool) -> None:
    if gone and keep_all:
        job.report.warnings.append(
            f"{source}: {len(gone)} document(s) not seen but kept, because some rows could not be read; "
            "fix them and re-run to delete"
        )
        return
    _forget_documents(source, gone, job.ctx.store, job.ctx.ledger, job.ctx.linker, job.report)


def _forget_documents(source: str, doc_ids: list[str], store: VectorStore, ledger: Ledger,
                      linker: EntityLinker | None, report: JobReport) -> None:
    """Delete each document's chunks, entity mentions and ledger row; count the indexed ones as deleted."""
    known = ledger.for_source(source)
    for doc_id in sorted(doc_ids):
        store.delete_document(doc_id)
        store.flush()
        if linker is not None:  # forgetting reaches the entity registry in the same run
            linker.forget_document(doc_id)
        ledger.forget(doc_id)
        report.deleted += int(doc_id in known)


def _prepare(
    todo: tuple[SourceItem, bool, bool], counter: TokenCounter, policy: ChunkingPolicy, redaction: tuple = ()
) -> _Prepared:
    item, existed, may_have_chunks = todo
    document = replace(item.load(), acl_origin=item.acl_origin)
    if not document.text.strip():
        raise InputError("no text left after cleaning")
    chunks = chunk_document(document, counter, policy)
    if redaction:  # raw values stay in the payload text; the vectors never see them
        document = replace(document, redaction=tuple(r.to_payload() for r in redaction))
        chunks = [replace(c, embed_text=mask_for_index(c.embed_text, redaction)) for c in chunks]
    sparse = [sparse_document_vector(c.embed_text) for c in chunks]
    return _Prepared(item, document, chunks, sparse, existed, may_have_chunks)


def _process(todo: list[tuple[SourceItem, bool, bool]], job: _Job) -> None:
    batch: list[_Prepared] = []
    batch_chunks = 0
    limit = job.ctx.settings.embed_batch_size * 8
    counter = _prefetch_counter(job.ctx.encoder)
    if counter is not None:
        outcomes = prefetch_map(lambda t: _prepare(t, counter, job.policy, job.redaction), todo, ahead=32)
    else:  # no tokenizer to copy: prepare in this thread, never concurrently with encoding
        outcomes = (_outcome(lambda t: _prepare(t, job.ctx.encoder, job.policy, job.redaction), t) for t in todo)
    with _EncodeAhead(job, overlap=counter is not None) as writer:
        for outcome in outcomes:
            if outcome.error is not None:
                item = outcome.item[0]
                job.report.fail(item.doc_id.split(":", 1)[0], item.label, _reason(outcome.error))
                job.progress("document", 1)
                continue
            batch.append(outcome.result)
            batch_chunks += len(outcome.result.chunks)
            if batch_chunks >= limit:
                writer.submit(batch)
                batch, batch_chunks = [], 0
        writer.submit(batch)


class _EncodeAhead:
    """Encodes batch N in a thread while this one writes batch N-1 (entity linking, payloads, upsert,
    flush, ledger): the store and the ledger are only ever touched from the calling thread, in batch
    order, and the encoder call releases the GIL, so the write work fills the core the encoder leaves
    idle between its batches. At most one batch is encoded ahead, so memory stays bounded. Without
    ``overlap`` each batch is written as soon as it is encoded (documents are then being prepared
    with the encoder's own tokenizer in this thread, which must not run beside an encoding)."""

    def __init__(self, job: _Job, *, overlap: bool) -> None:
        self._job, self._overlap = job, overlap
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="ingest-encode")
        self._ahead: tuple[list[_Prepared], Future] | None = None

    def submit(self, batch: list[_Prepared]) -> None:
        encoding = None
        if batch:
            encoding = (batch, self._pool.submit(_encode, self._job.ctx.encoder, [c for p in batch for c in p.chunks]))
        self._drain()
        self._ahead = encoding
        if not self._overlap:
            self._drain()

    def _drain(self) -> None:
        if self._ahead is not None:
            batch, vectors = self._ahead
            self._ahead = None
            _write_batch(batch, vectors.result(), self._job)

    def __enter__(self) -> _EncodeAhead:
        return self

    def __exit__(self, kind, *_) -> None:  # noqa: ANN001
        try:
            if kind is None:
                self._drain()
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)


def _encode(encoder: Encoder, chunks: list[Chunk]) -> np.ndarray:
    """The chunks' vectors; an encoder that splits at words as the chunker's tokens did is handed their ids
    (a chunk whose embedded text was masked after chunking has none, and is tokenised by the encoder)."""
    texts = [c.embed_text for c in chunks]
    if getattr(encoder, "splits_at_words", False):
        return encoder.encode_passages(texts, [c.known_embed_ids() for c in chunks])
    return encoder.encode_passages(texts)


def _prefetch_counter(encoder: Encoder) -> TokenCounter | None:
    """What the prefetch thread counts chunk tokens with while encodings run: the encoder itself when
    its counting is thread-safe (the ONNX encoders' own Rust tokenizer: no transformers import, no
    copy), else a private copy of its transformers tokenizer; None: count in the calling thread."""
    if getattr(encoder, "concurrent_token_counting", False):
        return encoder
    tokenizer = getattr(encoder, "tokenizer", None)
    return _PrivateTokenCounter(tokenizer) if tokenizer is not None else None


def _outcome(fn: Callable[[T], _Prepared], item: T) -> Outcome:
    try:
        return Outcome(item, fn(item), None)
    except Exception as exc:  # noqa: BLE001 - reported per input
        return Outcome(item, None, exc)


def _reason(error: BaseException) -> str:
    if isinstance(error, InputError):
        return str(error)
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def _write_batch(batch: list[_Prepared], dense: np.ndarray, job: _Job) -> None:
    ctx = job.ctx
    ctx.ledger.mark_pending([(p.document.doc_id, p.document.source) for p in batch])
    row, stored = 0, []
    for prepared in batch:
        doc, chunks = prepared.document, prepared.chunks
        entity_ids = ctx.linker.link_document(_as_linked(doc, job.redaction)) if ctx.linker else ()
        stored += [
            StoredChunk(chunk.chunk_id, tuple(dense[row + i].tolist()), prepared.sparse[i],
                        chunk_payload(doc, chunk, chunk_count=len(chunks), entity_ids=entity_ids))
            for i, chunk in enumerate(chunks)
        ]
        row += len(chunks)
    ctx.store.upsert(stored)
    for prepared in batch:
        if prepared.may_have_chunks:  # a brand-new document has nothing stale to delete
            ctx.store.delete_document(prepared.document.doc_id, keep=[c.chunk_id for c in prepared.chunks])
    job.progress("chunks", len(stored))
    ctx.store.flush()  # durable before the ledger says so
    entries = [
        LedgerEntry(p.document.doc_id, p.document.source, _stored_fingerprint(p.item, job.version),
                    tuple(c.chunk_id for c in p.chunks), not p.document.acl, p.document.acl)
        for p in batch
    ]
    ctx.ledger.record_many(entries)
    for prepared, entry in zip(batch, entries):
        job.report.chunks += len(prepared.chunks)
        job.report.invisible += int(entry.invisible)
        job.report.updated += int(prepared.existed)
        job.report.added += int(not prepared.existed)
        job.progress("document", 1)


def _as_linked(document: Document, redaction: tuple) -> Document:
    """What entity linking may read: a redacted value never becomes an entity name or alias."""
    if not redaction:
        return document
    mentions = tuple((kind, surface) for kind, surface in document.entity_mentions
                     if mask_for_index(surface, redaction) == surface)
    return replace(document, text=mask_for_index(document.text, redaction), entity_mentions=mentions)
