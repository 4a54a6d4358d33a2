"""Chunking: token-bounded by the embedder's tokenizer, offsets into the cleaned text, section paths."""

from __future__ import annotations

from dataclasses import replace

from core.models import Document, Section
from ingest.chunk import ChunkingPolicy, chunk_document, embed_header
from ingest.partition import Block
from ingest.sources import assemble_document


def _doc(blocks):
    return assemble_document(blocks, doc_id="wiki:x", source="wiki", title="Guide", uri=None, acl=("role:a",),
                             updated_at=None)


def test_no_chunk_exceeds_the_model_window_and_offsets_point_into_the_text(encoder):
    long_para = " ".join(f"Sentence number {i} explains the enterprise refund rule in detail." for i in range(120))
    doc = _doc([Block("Guide", "title"), Block("Refunds", "title", depth=1), Block(long_para, "text", depth=1),
                Block("Renewals", "title", depth=1), Block("Renewals are quoted early.", "text")])
    chunks = chunk_document(doc, encoder, ChunkingPolicy(max_tokens=254, overlap_tokens=32))
    assert len(chunks) > 3
    counts = encoder.count_tokens([c.embed_text for c in chunks])
    assert max(counts) <= encoder.max_tokens  # the model never truncates
    for chunk in chunks:
        assert doc.text[chunk.start : chunk.end] == chunk.text
        assert chunk.embed_text.startswith(embed_header("Guide", chunk.section_path))
    assert chunks[-1].section_path == ("Guide", "Renewals")
    assert "Renewals are quoted early." in chunks[-1].text


def test_split_paragraph_chunks_overlap_by_whole_sentences(encoder):
    long_para = " ".join(f"Fact {i} is stated here plainly." for i in range(200))
    doc = _doc([Block(long_para, "text")])
    chunks = chunk_document(doc, encoder, ChunkingPolicy(max_tokens=128, overlap_tokens=24))
    assert len(chunks) >= 3
    for a, b in zip(chunks, chunks[1:]):
        assert b.start < a.end  # overlap carried
        assert doc.text[b.start - 1] == " " or b.start == 0  # starts on a sentence boundary


def test_a_giant_token_blob_is_hard_cut_but_still_fits(encoder):
    doc = _doc([Block("x" * 5000 + " tail words here.", "text")])
    chunks = chunk_document(doc, encoder, ChunkingPolicy(max_tokens=64, overlap_tokens=0))
    assert all(n <= 64 for n in encoder.count_tokens([c.embed_text for c in chunks]))


def test_chunk_ids_are_deterministic_and_change_with_content(encoder):
    doc = _doc([Block("Alpha text.", "text")])
    again = chunk_document(doc, encoder, ChunkingPolicy())
    assert [c.chunk_id for c in chunk_document(doc, encoder, ChunkingPolicy())] == [c.chunk_id for c in again]
    other = _doc([Block("Beta text.", "text")])
    assert chunk_document(other, encoder, ChunkingPolicy())[0].chunk_id != again[0].chunk_id


def test_pages_follow_the_sections_a_chunk_covers(encoder):
    text = "Page one text.\n\nPage two text."
    doc = Document("f:1", "f", "T", text, sections=(Section(0, 14, "text", 1), Section(16, 30, "text", 2)))
    chunks = chunk_document(doc, encoder, ChunkingPolicy())
    assert chunks[0].pages == (1, 2)


def test_small_sections_merge_with_their_siblings_within_the_window(encoder):
    blocks = [Block("Guide", "title")]
    for name in ("Refunds", "Renewals", "Escalations"):
        blocks += [Block(name, "title", depth=1), Block(f"{name} are handled by the account team.", "text", depth=1)]
    doc = _doc(blocks)
    merged = chunk_document(doc, encoder, ChunkingPolicy())
    assert len(merged) == 1 and "Escalations are handled" in merged[0].text
    assert merged[0].section_path == ("Guide",)
    separate = chunk_document(doc, encoder, ChunkingPolicy(merge_below_tokens=0))
    assert len(separate) == 3  # without merging every section became its own tiny chunk


def test_a_long_title_never_pushes_a_chunk_past_the_window(encoder):
    doc = assemble_document([Block("word " * 400, "text")], doc_id="x:1", source="x", title="Title " * 300,
                            uri=None, acl=(), updated_at=None)
    chunks = chunk_document(doc, encoder, ChunkingPolicy())
    assert max(encoder.count_tokens([c.embed_text for c in chunks])) <= encoder.max_tokens
    assert "".join(c.text for c in chunks).count("word") >= 400


def test_tables_split_between_rows(encoder):
    rows = "\n".join(f"Plan {i} | {i * 10} EUR | {i} seats" for i in range(60))
    doc = _doc([Block(rows, "table")])
    chunks = chunk_document(doc, encoder, ChunkingPolicy(max_tokens=64, overlap_tokens=0))
    assert len(chunks) > 2
    assert all(c.text.startswith("Plan ") and c.text.endswith("seats") for c in chunks)


# --- over-long "words": every chunk fits the window whatever the input (issue 11) -----------------

import base64  # noqa: E402
import random  # noqa: E402

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


def _assert_fits(encoder, text: str, max_tokens: int = 254) -> None:
    doc = _doc([Block("Attachment", "title"), Block(text, "text", depth=1)])
    chunks = chunk_document(doc, encoder, ChunkingPolicy(max_tokens=max_tokens, overlap_tokens=16))
    counts = encoder.count_tokens([c.embed_text for c in chunks])
    assert max(counts) <= max_tokens, (max(counts), [c.text[:60] for c, n in zip(chunks, counts) if n > max_tokens])
    for chunk in chunks:
        assert doc.text[chunk.start : chunk.end] == chunk.text
    covered = "".join(doc.text[c.start : c.end] for c in chunks)
    assert set(text.split()[-1]) <= set(covered)  # nothing dropped at the end


def test_a_base64_blob_is_cut_to_the_window(encoder):
    blob = base64.b64encode(random.Random(11).randbytes(1500)).decode()  # ~2,000 characters, ~1,200 tokens
    assert encoder.count_tokens([blob])[0] > 254
    _assert_fits(encoder, f"Log excerpt: {blob} end of excerpt.")


def test_varied_blobs_are_cut_to_the_window(encoder):
    rng = random.Random(5)
    blobs = [
        "".join(rng.choice("0123456789abcdef") for _ in range(3000)),                       # hex dump
        "https://example.com/" + "/".join(f"seg{i}?q={i}&r=%2F{i}" for i in range(300)),    # huge URL
        "路线规划软件" * 300,                                                                 # CJK, no spaces
        "🙂" * 800,                                                                         # emoji run
        "a.b," * 900,                                                                       # punctuation-dense
    ]
    for blob in blobs:
        _assert_fits(encoder, blob)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=st.sampled_from(list("abcXYZ019+/=.-_:;!?éß路🙂 ")), min_size=300, max_size=2500))
def test_any_text_fits_the_window(encoder, text):
    if text.split():
        _assert_fits(encoder, text, max_tokens=96)


class _CountOnly:
    """The same tokenizer without ``tokens``: every sentence is tokenised alone (the reference)."""

    def __init__(self, inner) -> None:  # noqa: ANN001
        self.inner, self.texts = inner, 0

    def count_tokens(self, texts: list[str]) -> list[int]:
        self.texts += len(texts)
        return self.inner.count_tokens(texts)


def _spans_of(chunks):
    return [(c.start, c.end, c.section_path, c.embed_text) for c in chunks]


_PROSE = st.lists(st.sampled_from(list("abcXYZ019+/=.-_:;!?()'\"éßñ路🙂 \n\t")
                                  + ["e\u0301", "\u200b", ". ", "? ", "word ", "Initech's ", "x" * 120]),
                  min_size=100, max_size=900).map("".join)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_PROSE, st.integers(min_value=24, max_value=254))
def test_sentences_counted_from_their_sections_tokens_chunk_as_if_tokenised_alone(encoder, text, window):
    """ONNX encoders give token offsets, so a long section's sentences are counted from the section's own
    tokens; the chunks must be exactly those of counting each sentence alone."""
    if not text.split():
        return
    doc = _doc([Block("Guide", "title"), Block(text, "text"), Block("Tail", "title", depth=1), Block(text[::-1], "text")])
    policy = ChunkingPolicy(max_tokens=window, overlap_tokens=min(32, window // 4))
    assert _spans_of(chunk_document(doc, encoder, policy)) == _spans_of(chunk_document(doc, _CountOnly(encoder), policy))


def test_a_long_abstract_is_tokenised_once_for_its_sentences(encoder):
    """Real prose (SciFact-like): the same chunks, and the sentences are not sent to the tokenizer again."""
    abstract = " ".join(
        f"In {i} of 40 cohorts (n = {100 + i}), IL-{i % 7} levels rose by {i}.{i % 10}% (p < 0.0{i % 9 + 1}); "
        "this was not seen in wild-type mice [12]." for i in range(40))
    doc = _doc([Block(abstract, "text")])
    policy = ChunkingPolicy(max_tokens=254, overlap_tokens=32)
    alone = _CountOnly(encoder)
    reference = chunk_document(doc, alone, policy)
    assert len(reference) > 3 and alone.texts > 40  # the reference counted every sentence
    spied = _CountOnly(encoder)
    spied.tokens, spied.splits_at_words = encoder.tokens, True
    assert _spans_of(chunk_document(doc, spied, policy)) == _spans_of(reference)
    assert spied.texts <= 1  # at most the header; the section and its sentences came from one tokens call


def test_a_span_with_a_token_across_its_edge_is_counted_alone():
    """Offsets can only answer spans whose edges fall between tokens; any other gets None (counted alone)."""
    from ingest.chunk import _SectionTokens

    tokens = _SectionTokens([1, 2, 3, 4], [(0, 5), (6, 11), (11, 12), (13, 20)], base=100)  # "Hello world. Goodbye"
    assert tokens.count(100, 112) == 3 and tokens.count(113, 120) == 1 and tokens.count(100, 120) == 4
    assert tokens.count(103, 112) is None and tokens.count(100, 109) is None  # inside "Hello", inside "world"


def _alone(encoder, text: str) -> list[int]:
    return encoder.tokens([text])[0][0]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_PROSE, st.integers(min_value=24, max_value=254), st.sampled_from(["Guide", "Über-Guide 路 v2", ""]))
def test_a_chunks_ids_are_those_of_its_embedded_text_tokenised_alone(encoder, text, window, title):
    """The ids a chunk carries for the encoder are exactly what tokenising its embedded text alone gives;
    a chunk whose ids the sections' tokens cannot give (a cut inside a word) carries none."""
    if not text.split():
        return
    doc = replace(_doc([Block("Intro", "title"), Block(text, "text"), Block("Tail", "title", depth=1),
                        Block(text[::-1], "text", depth=1)]), title=title)
    for chunk in chunk_document(doc, encoder, ChunkingPolicy(max_tokens=window, overlap_tokens=min(32, window // 4))):
        ids = chunk.known_embed_ids()
        assert ids is None or list(ids) == _alone(encoder, chunk.embed_text), chunk.embed_text


def test_prose_chunks_carry_their_ids_and_a_word_cut_in_two_does_not(encoder):
    prose = " ".join(f"Clause {i} of the Initech agreement renews on 1 March." for i in range(80))
    # a 2,400-character base64 "word" (its "+" and "/" split it into ~1,000 tokens): cut inside it, so each
    # piece is tokenised alone
    blob = base64.b64encode(random.Random(7).randbytes(1800)).decode()
    doc = _doc([Block("Guide", "title"), Block(prose, "text"), Block(blob, "text")])
    chunks = chunk_document(doc, encoder, ChunkingPolicy())
    prose_chunks = [c for c in chunks if c.end <= doc.text.index(blob)]
    assert len(prose_chunks) >= 3 and all(c.known_embed_ids() is not None for c in prose_chunks)
    assert all(list(c.known_embed_ids()) == _alone(encoder, c.embed_text) for c in prose_chunks)
    blob_chunks = [c for c in chunks if c not in prose_chunks]
    assert len(blob_chunks) >= 2 and all(c.known_embed_ids() is None for c in blob_chunks)


def test_ids_belong_to_the_text_they_were_read_from(encoder):
    """A chunk whose embedded text is replaced (ingest masks redacted values after chunking) has no ids."""
    chunk = chunk_document(_doc([Block("Reach lena@example.com today.", "text")]), encoder, ChunkingPolicy())[0]
    assert chunk.known_embed_ids() is not None
    masked = replace(chunk, embed_text=chunk.embed_text.replace("lena@example.com", "[email]"))
    assert masked.known_embed_ids() is None
    assert replace(chunk, embed_text=str(chunk.embed_text)).known_embed_ids() is not None  # same text: still its ids


def test_a_counter_that_does_not_split_at_words_gives_no_ids(encoder):
    counter = _CountOnly(encoder)
    counter.tokens = encoder.tokens  # offered, but not declared safe to cut at words: never used
    chunks = chunk_document(_doc([Block("Plain words here.", "text")]), counter, ChunkingPolicy())
    assert [c.known_embed_ids() for c in chunks] == [None]
