"""Context stitching, dedupe and packing against a real store: what a caller sees in the pack."""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone

import numpy as np
import pytest

from core import payload as P
from core.access import acl_tokens_for_roles, principal_tokens
from core.config import Settings
from core.models import Chunk, Document, Principal, StoredChunk
from core.sparse import sparse_document_vector
from retrieval.context import ContextRequest, Retriever
from retrieval.pack import count_tokens, drop_duplicates, pack_passages
from retrieval.search import SearchPlan
from retrieval.stitch import merge_hits, stitch_hits, widen_spans

SALES = Principal("alice", ("sales",))


class HashEncoder:
    """A deterministic bag-of-words encoder: shared words give cosine similarity, no model needed."""

    name, dimension, max_tokens = "hash-bow", 64, 254

    def _vector(self, text: str) -> np.ndarray:
        vec = np.full(self.dimension, 0.01, dtype=np.float32)
        for word in text.lower().split():
            word = word.strip(".,;:!?\"'()")
            if word:
                vec[int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dimension] += 1.0
        return vec / np.linalg.norm(vec)

    def encode_passages(self, texts: list[str]) -> np.ndarray:
        return np.stack([self._vector(t) for t in texts]) if texts else np.zeros((0, self.dimension), np.float32)

    def encode_query(self, text: str) -> np.ndarray:
        return self._vector(text)

    def count_tokens(self, texts: list[str]) -> list[int]:
        return [len(t.split()) for t in texts]


def make_document(
    doc_id: str, parts: list[str], *, roles=("sales",), source=None, uri=None, updated=None,
    entity_ids=(), chunk_roles: dict[int, tuple[str, ...]] | None = None,
) -> list[StoredChunk]:
    """One document whose chunks are ``parts`` laid out with one space between them."""
    source = source or doc_id.split(":")[0]
    text = " ".join(parts)
    document = Document(
        doc_id, source, f"Title of {doc_id}", text, uri=uri, acl=acl_tokens_for_roles(roles),
        updated_at=updated,
    )
    encoder, out, cursor = HashEncoder(), [], 0
    for index, body in enumerate(parts):
        chunk = Chunk(f"{doc_id}#{index}", doc_id, index, body, cursor, cursor + len(body), content_hash=str(index))
        payload = P.chunk_payload(document, chunk, chunk_count=len(parts), entity_ids=tuple(entity_ids))
        if chunk_roles and index in chunk_roles:
            payload[P.ACL] = list(acl_tokens_for_roles(chunk_roles[index]))
        point_id = P.chunk_point_id(doc_id, index, str(index))
        dense = tuple(encoder.encode_query(body).tolist())
        out.append(StoredChunk(point_id, dense, sparse_document_vector(body), payload))
        cursor += len(body) + 1
    return out


def load(store, *documents: list[StoredChunk]) -> None:
    store.ensure_collection(HashEncoder.dimension)
    for chunks in documents:
        store.upsert(chunks)
    store.flush()


def retriever_for(store, **kwargs) -> Retriever:
    """BM25-only by default: in a tiny corpus only chunks sharing a word are hits, the rest are neighbours."""
    kwargs.setdefault("plan", SearchPlan(mode="sparse"))
    return Retriever(Settings(data_dir="/nonexistent"), HashEncoder(), store, **kwargs)


SENTENCES = [f"Sentence number {i} talks about topic {i}." for i in range(12)]


@pytest.fixture()
def report_store(any_store):
    """A five-chunk report, a two-chunk memo, and a document sales may not see."""
    load(
        any_store,
        make_document("wiki:report", [
            "Revenue grew in the north region.", "The renewal for Acme closed in March.",
            "Acme asked for a discount on support.", "The team hired two engineers.", "Office moved downtown.",
        ], uri="https://wiki/report"),
        make_document("wiki:memo", ["Lunch menu for Friday.", "Parking rules changed."]),
        make_document("hr:salaries", ["Acme renewal bonus for the sales lead was large."], roles=("hr",)),
    )
    return any_store


def test_hit_is_stitched_with_its_neighbours_into_one_cited_passage(report_store):
    pack = retriever_for(report_store).context(ContextRequest("closed in March", SALES, top_k=1))
    first = pack.passages[0]
    assert first.doc_id == "wiki:report" and first.citation == 1
    assert first.text == (
        "Revenue grew in the north region. The renewal for Acme closed in March. "
        "Acme asked for a discount on support."
    )
    assert len(first.chunk_ids) == 3
    assert pack.citations[0].start == first.start == 0
    assert first.end - first.start == len(first.text)
    assert pack.context.startswith("[1] Revenue grew")


def test_adjacent_hits_of_one_document_become_one_span(report_store):
    retriever = retriever_for(report_store, plan=SearchPlan(mode="dense"))
    hits, _ = retriever.search(ContextRequest("Acme renewal discount", SALES), limit=10)
    assert len([h for h in hits if h.payload[P.DOC_ID] == "wiki:report"]) == 5
    spans = merge_hits(hits)
    report = [s for s in spans if s.doc_id == "wiki:report"]
    assert [s.indexes for s in report] == [(0, 1, 2, 3, 4)]
    assert report[0].rank == 0


def test_invisible_document_never_appears(report_store):
    pack = retriever_for(report_store).context(ContextRequest("Acme renewal bonus sales lead", SALES))
    assert pack.passages
    assert all(p.doc_id != "hr:salaries" for p in pack.passages)
    assert "bonus" not in pack.context


def test_neighbour_the_principal_cannot_see_is_never_stitched(any_store):
    load(any_store, make_document(
        "wiki:plan", ["Public intro paragraph.", "The Acme renewal plan is ready.", "Secret layoffs list here."],
        chunk_roles={2: ("hr",)},
    ))
    pack = retriever_for(any_store).context(ContextRequest("Acme renewal plan", SALES, top_k=3))
    assert [p.text for p in pack.passages] == ["Public intro paragraph. The Acme renewal plan is ready."]
    assert "Secret" not in pack.context
    hr = Principal("bob", ("hr", "sales"))
    pack = retriever_for(any_store).context(ContextRequest("Acme renewal plan", hr, top_k=3))
    assert "Secret layoffs" in pack.context


def test_widening_skips_hidden_neighbours_even_if_the_store_returned_them(any_store):
    chunks = make_document("wiki:x", ["Alpha one.", "Beta two.", "Gamma three."], chunk_roles={0: ("hr",)})
    load(any_store, chunks, make_document("wiki:other", ["Other doc, same index.", "Not asked for."]))

    class LeakyStore:
        """A store whose neighbour fetch forgets the ACL filter: stitching must still not leak."""

        def fetch_neighbours(self, wanted, *, acl_tokens):
            everything = [h for doc_id in wanted for h in any_store.document_chunks(doc_id, acl_tokens=None)]
            return everything + any_store.document_chunks("wiki:other", acl_tokens=None)

    hits = [h for h in any_store.document_chunks("wiki:x", acl_tokens=None) if h.payload[P.CHUNK_INDEX] == 1]
    spans = stitch_hits(hits, LeakyStore(), acl_tokens=principal_tokens(SALES), window=1)
    assert [s.text for s in spans] == ["Beta two. Gamma three."]


def test_neighbours_are_fetched_only_for_spans_that_can_fit(any_store):
    docs = [make_document(f"wiki:d{i}", [f"Filler {i}.", f"Widget fact number {i}.", f"Tail {i}."]) for i in range(6)]
    load(any_store, *docs)
    fetched: list[str] = []

    class CountingStore:
        def __getattr__(self, name):
            return getattr(any_store, name)

        def fetch_neighbours(self, wanted, *, acl_tokens):
            fetched.append(set(wanted))
            return any_store.fetch_neighbours(wanted, acl_tokens=acl_tokens)

    pack = retriever_for(CountingStore()).context(ContextRequest("widget fact number", SALES, top_k=2))
    assert len(pack.passages) == 2
    assert len(fetched) == 1  # one fetch for every document's neighbours, not one per document
    assert fetched[0] <= {p.doc_id for p in pack.passages}
    assert all(len(p.chunk_ids) == 3 for p in pack.passages)  # both documents were widened


def test_pack_respects_budget_and_never_cuts_mid_sentence(any_store):
    load(any_store, make_document("wiki:long", [" ".join(SENTENCES[:6]), " ".join(SENTENCES[6:])]))
    budget = 40
    pack = retriever_for(any_store).context(ContextRequest("topic 3", SALES, max_tokens=budget))
    assert pack.truncated
    assert 0 < pack.tokens <= budget
    assert pack.tokens == count_tokens(pack.context)
    for passage in pack.passages:
        assert passage.text.endswith(".")
        assert passage.end - passage.start == len(passage.text)


def test_tight_budget_drops_neighbours_before_the_hit(any_store):
    """Over budget, the left neighbour's sentences go first: the matching sentence stays in the pack."""
    left = " ".join(f"Background note {i} covers the warehouse history in some detail." for i in range(8))
    load(any_store, make_document("wiki:memo", [left, "The Falcon renewal closes on 3 March.", "Other matters."]))
    budget = 30
    pack = retriever_for(any_store).context(ContextRequest("Falcon renewal", SALES, max_tokens=budget, top_k=1))
    assert pack.truncated and 0 < pack.tokens <= budget
    passage = pack.passages[0]
    assert "The Falcon renewal closes on 3 March." in passage.text
    assert "Background note 0 " not in passage.text  # the far neighbour sentence went first
    document = " ".join([left, "The Falcon renewal closes on 3 March.", "Other matters."])
    assert document[passage.start : passage.end] == passage.text


def test_pack_reports_not_truncated_when_everything_fits(report_store):
    pack = retriever_for(report_store).context(ContextRequest("office moved", SALES, max_tokens=4000))
    assert not pack.truncated
    assert [c.id for c in pack.citations] == list(range(1, len(pack.citations) + 1))
    assert all(f"[{c.id}] " in pack.context for c in pack.citations)


def test_passages_carry_entity_ids_and_updated_at(any_store):
    when = datetime(2026, 3, 1, tzinfo=timezone.utc)
    load(any_store, make_document("crm:acme", ["Acme renewal terms."], updated=when, entity_ids=("ent_acme",)))
    pack = retriever_for(any_store).context(ContextRequest("Acme renewal terms", SALES))
    assert pack.passages[0].entity_ids == ("ent_acme",)
    assert pack.passages[0].updated_at == when.isoformat()


def test_duplicate_text_from_two_systems_keeps_the_better_cited_copy(any_store):
    body = "Acme agreed to renew for three years at the list price, starting in April."
    load(
        any_store,
        make_document("email:m1", [body]),
        make_document("tickets:t9", [body], uri="https://tickets/t9"),
    )
    pack = retriever_for(any_store).context(ContextRequest("Acme renew three years", SALES))
    assert [p.doc_id for p in pack.passages] == ["tickets:t9"]
    assert pack.citations[0].uri == "https://tickets/t9"


def test_dedupe_keeps_relevance_order_and_best_rank():
    from retrieval.stitch import StitchedSpan
    from core.models import Hit

    def span(doc, rank, text, uri=None):
        payload = {P.DOC_ID: doc, P.CHUNK_INDEX: 0, P.SPAN_START: 0, P.SPAN_END: len(text), P.TEXT: text,
                   P.URI: uri, P.SOURCE: doc.split(":")[0], P.TITLE: doc}
        return StitchedSpan(doc, 1.0 / (rank + 1), rank, (Hit(doc, 0.0, payload),))

    text = "The quarterly numbers were strong across every region this year."
    spans = [span("a:1", 0, "Something else entirely, about parking rules."), span("b:1", 1, text),
             span("c:1", 2, text + " "), span("d:1", 3, "Unrelated tail passage about lunch menus.")]
    spans[2] = span("c:1", 2, text, uri="https://c/1")
    kept = drop_duplicates(spans)
    assert [s.doc_id for s in kept] == ["a:1", "c:1", "d:1"]
    assert kept[1].rank == 1
    packed = pack_passages(kept, top_k=10, max_tokens=1000)
    assert [p.citation for p in packed.passages] == [1, 2, 3]


def test_overlapping_chunks_are_written_once():
    from retrieval.stitch import StitchedSpan
    from core.models import Hit

    text = "One two three. Four five six. Seven eight nine."
    a = {P.DOC_ID: "d", P.CHUNK_INDEX: 0, P.SPAN_START: 0, P.SPAN_END: 29, P.TEXT: text[0:29]}
    b = {P.DOC_ID: "d", P.CHUNK_INDEX: 1, P.SPAN_START: 15, P.SPAN_END: len(text), P.TEXT: text[15:]}
    span = StitchedSpan("d", 1.0, 0, (Hit("b", 1.0, b), Hit("a", 0.5, a)))
    assert span.text == text
    widened = widen_spans([span], store=None, acl_tokens=(), window=0)
    assert widened == [span]


def test_plan_rejects_unknown_mode():
    with pytest.raises(ValueError, match="mode"):
        SearchPlan(mode="fuzzy")


def test_token_counts_of_different_spans_are_computed_concurrently(monkeypatch):
    """Request threads must not queue on one lock to count unrelated spans (Python 3.11's
    functools.cached_property holds one lock per attribute across all instances: this test hung there)."""
    import threading

    import retrieval.stitch as stitch
    from core.models import Hit

    both_inside = threading.Barrier(2, timeout=5)

    def counting(parts):  # both threads must be inside at once, or the barrier breaks
        both_inside.wait()
        return 7

    monkeypatch.setattr(stitch, "count_joined", counting)
    spans = [
        stitch.StitchedSpan(doc_id=f"d{i}", score=1.0, rank=i, chunks=(
            Hit(f"c{i}", 1.0, {P.SPAN_START: 0, P.SPAN_END: 5, P.TEXT: "hello", P.CHUNK_INDEX: 0}),))
        for i in range(2)
    ]
    counts, errors = [], []

    def count(span):
        try:
            counts.append(span.tokens)
        except threading.BrokenBarrierError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=count, args=(span,)) for span in spans]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert not errors and counts == [7, 7]
    assert spans[0].tokens == 7  # cached: the barrier is not entered again
