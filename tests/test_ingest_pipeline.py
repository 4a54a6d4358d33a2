"""Incremental sync through the real embedded store: unchanged, updated, deleted, failed, --full."""

from __future__ import annotations

import json

import pytest

from core.config import Settings
from core.models import SearchFilters
from core.payload import CONTENT_HASH, ENTITY_IDS, TEXT
from core.sparse import sparse_query_vector
from core.store.edge import EdgeStore
from core.store.protocol import HybridQuery, PrefetchSpec
from ingest.ledger import Ledger
from ingest.manifest import load_manifest
from ingest.pipeline import IngestContext, ingest_manifests

MANIFEST = "source: {source}\nkind: records\npath: {path}\nid_field: id\ntitle_field: title\ntext_fields: [text]\n" \
           "acl: {{default: [staff]}}\n"


class CountingEncoder:
    """The session encoder, counting the passages it embeds."""

    def __init__(self, inner) -> None:
        self.inner, self.embedded = inner, 0
        self.name, self.dimension, self.max_tokens = inner.name, inner.dimension, inner.max_tokens

    def encode_passages(self, texts):
        self.embedded += len(texts)
        return self.inner.encode_passages(texts)

    def encode_query(self, text):
        return self.inner.encode_query(text)

    def count_tokens(self, texts):
        return self.inner.count_tokens(texts)

    @property
    def tokenizer(self):
        return self.inner.tokenizer


class Env:
    def __init__(self, tmp_path, encoder) -> None:
        self.dir = tmp_path
        self.settings = Settings(data_dir=tmp_path / "data")
        self.encoder = CountingEncoder(encoder)
        self.store = EdgeStore(self.settings.qdrant_path)
        self.ledger = Ledger(self.settings.ledger_path)
        self.linker = None

    def write(self, rows, name="crm", source="crm"):
        (self.dir / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        (self.dir / f"{name}.yaml").write_text(MANIFEST.format(source=source, path=f"{name}.jsonl"))
        return self.dir / f"{name}.yaml"

    def ingest(self, *manifests, full=False):
        ctx = IngestContext(self.settings, self.encoder, self.store, self.ledger, linker=self.linker)
        self.encoder.embedded = 0
        return ingest_manifests([load_manifest(m) for m in manifests], ctx, full=full)

    def keyword_hits(self, word):
        query = HybridQuery((PrefetchSpec("bm25", sparse_query_vector(word), 20),), limit=20)
        return [h.payload[TEXT] for h in self.store.search(query, acl_tokens=["role:staff"])]


class StubLinker:
    """The entity linker hooks the pipeline calls besides ``link_document``, doing nothing."""

    def set_document_acl(self, doc_id, acl):
        pass

    def forget_document(self, doc_id):
        pass

    def relink(self, chunks, mask=None):
        return 0


@pytest.fixture()
def env(tmp_path, encoder):
    e = Env(tmp_path, encoder)
    yield e
    e.store.close()
    e.ledger.close()


ROWS = [{"id": str(i), "title": f"Account {i}", "text": f"Account {i} renews in month {i}."} for i in range(1, 6)]


def test_rerun_of_unchanged_input_embeds_nothing(env):
    manifest = env.write(ROWS)
    first = env.ingest(manifest)
    assert (first.added, first.failed, env.encoder.embedded) == (5, 0, 5)
    again = env.ingest(manifest)
    assert (again.unchanged, again.added, again.updated, again.deleted, env.encoder.embedded) == (5, 0, 0, 0, 0)
    assert again.exit_code == 0


def test_changed_document_replaces_its_chunks_and_nothing_stale_is_searchable(env):
    manifest = env.write(ROWS[:1] + [{"id": "2", "title": "Account 2", "text": "Zanzibar pricing was agreed."}])
    env.ingest(manifest)
    assert env.keyword_hits("zanzibar")
    report = env.ingest(env.write(ROWS[:1] + [{"id": "2", "title": "Account 2", "text": "Quokka pricing agreed."}]))
    assert (report.updated, report.unchanged, env.encoder.embedded) == (1, 1, 1)
    assert env.keyword_hits("zanzibar") == [] and env.keyword_hits("quokka")
    assert env.store.count() == 2
    assert {h.point_id for h in env.store.document_chunks("crm:2", acl_tokens=None)} == set(env.ledger.get("crm:2").chunk_ids)


def test_document_gone_from_source_is_deleted(env):
    env.ingest(env.write(ROWS))
    report = env.ingest(env.write(ROWS[:3]))
    assert (report.deleted, report.unchanged) == (2, 3)
    assert env.store.document_chunks("crm:5", acl_tokens=None) == [] and env.ledger.get("crm:5") is None


def test_unreadable_rows_keep_existing_documents(env):
    env.ingest(env.write(ROWS))
    path = env.dir / "crm.jsonl"
    path.write_text(path.read_text().replace('{"id": "5"', '{"id": "5",,'))
    report = env.ingest(env.dir / "crm.yaml")
    assert report.failed == 1 and report.deleted == 0 and report.warnings
    assert env.store.document_chunks("crm:5", acl_tokens=None)


def test_full_rebuild_reembeds_everything_with_the_same_ids(env):
    manifest = env.write(ROWS)
    env.ingest(manifest)
    before = {h.point_id for h in env.store.document_chunks("crm:1", acl_tokens=None)}
    report = env.ingest(manifest, full=True)
    assert (report.updated, env.encoder.embedded) == (5, 5)
    assert {h.point_id for h in env.store.document_chunks("crm:1", acl_tokens=None)} == before
    assert env.store.count() == 5


def test_a_corrupted_file_fails_and_its_indexed_version_stays_searchable(env):
    (env.dir / "files").mkdir()
    good = env.dir / "files" / "policy.md"
    good.write_text("# Policy\n\nWombat discounts need director approval.\n")
    (env.dir / "files.yaml").write_text("source: wiki\nkind: files\npath: files\nacl: {default: [staff]}\n")
    assert env.ingest(env.dir / "files.yaml").added == 1
    good.write_bytes(b"\xff\xfe\x00\xd8broken" * 3)  # UTF-16 BOM with an unpaired surrogate: undecodable
    report = env.ingest(env.dir / "files.yaml")
    assert report.failed == 1 and report.exit_code == 1 and report.deleted == 0
    assert "policy.md" in report.errors[0].item and report.errors[0].reason
    assert any("Wombat" in t for t in env.keyword_hits("wombat"))


def test_chunks_left_by_an_interrupted_write_of_a_vanished_document_are_removed(env):
    manifest = env.write(ROWS[:2])
    env.ingest(manifest)
    # As if a run died after writing doc 3's chunks but before the ledger recorded them, and doc 3 then left.
    env.ingest(env.write(ROWS[:3]))
    env.ledger.forget("crm:3")
    env.ledger.mark_pending([("crm:3", "crm")])
    env.ingest(env.write(ROWS[:2]))
    assert env.store.document_chunks("crm:3", acl_tokens=None) == [] and env.ledger.pending("crm") == set()


def test_same_content_from_two_systems_has_the_same_content_hash(env):
    email = "Acme agreed to renew for 24 months at a 5% uplift, payment net 30."
    env.ingest(env.write([{"id": "m1", "title": "Re: renewal", "text": email}], name="mail", source="email"),
               env.write([{"id": "t9", "title": "Ticket 9", "text": "  " + email.upper() + "\n"}], name="tix",
                         source="tickets"))
    hashes = {h.payload["source"]: h.payload[CONTENT_HASH]
              for d in ("email:m1", "tickets:t9") for h in env.store.document_chunks(d, acl_tokens=None)}
    assert hashes["email"] == hashes["tickets"]
    assert env.store.count(filters=SearchFilters(sources=("tickets",))) == 1


def test_entity_linker_hook_stamps_chunks(env):
    class Linker(StubLinker):
        def link_document(self, document):
            return ("ent_acme",) if "Acme" in document.text else ()

    env.linker = Linker()
    env.ingest(env.write([{"id": "1", "title": "Acme", "text": "Acme renewal."}, {"id": "2", "text": "Other."}]))
    assert env.store.document_chunks("crm:1", acl_tokens=None)[0].payload[ENTITY_IDS] == ["ent_acme"]
    assert env.store.document_chunks("crm:2", acl_tokens=None)[0].payload[ENTITY_IDS] == []


def test_the_next_batch_is_encoded_while_the_previous_one_is_written(env):
    """Encoding batch N overlaps writing batch N-1 (linking, upsert, flush, ledger). The linker of the
    first batch's first document waits for the encoder to be asked for the second batch: written one
    after the other (the old pipeline) that never happens and the wait runs out."""
    import threading

    second_batch = threading.Event()
    calls = []
    encode = env.encoder.encode_passages

    def spy(texts):
        calls.append(len(texts))
        if len(calls) == 2:
            second_batch.set()
        return encode(texts)

    class Linker(StubLinker):
        overlapped = None

        def link_document(self, document):
            if self.overlapped is None:
                self.overlapped = second_batch.wait(20)
            return ()

    env.encoder.encode_passages = spy
    env.linker = Linker()
    env.settings = env.settings.model_copy(update={"embed_batch_size": 1})  # batches of 8 chunks
    rows = [{"id": str(i), "title": f"Note {i}", "text": f"Account {i} renews in month {i}."} for i in range(20)]
    report = env.ingest(env.write(rows))
    assert env.linker.overlapped is True
    assert calls == [8, 8, 4]
    assert (report.added, report.chunks, env.store.count()) == (20, 20, 20)


def test_an_encoder_that_counts_tokens_concurrently_is_chunked_with_directly(env, encoder):
    """The ONNX encoders count with their own Rust tokenizer, safe beside an encoding: ingest uses it in
    the prefetch thread and never asks for (so never imports) the transformers tokenizer."""

    class OwnCounting(CountingEncoder):
        concurrent_token_counting = True

        @property
        def tokenizer(self):
            raise AssertionError("the transformers tokenizer was loaded")

    assert encoder.concurrent_token_counting  # the session's (default) encoder is one of them
    env.encoder = OwnCounting(encoder)
    report = env.ingest(env.write(ROWS))
    assert (report.added, report.failed, env.encoder.embedded) == (5, 0, 5)
