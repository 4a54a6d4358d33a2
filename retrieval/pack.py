"""Dedupe stitched spans, pack them to a token budget without cutting sentences, and cite them.

Tokens are counted with tiktoken's ``cl100k_base`` (the encoding llama-index ships offline),
a fair proxy for the LLM that reads the context.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import lru_cache

from rapidfuzz import fuzz

from core import payload as P
from core.models import Citation, Passage
from retrieval.stitch import StitchedSpan
from retrieval.untrusted import neutralise_markers, passage_flags

TOKENIZER_NAME = "cl100k_base"
_SENTENCE = re.compile(r"[^.!?\n]+(?:[.!?]+[\"')\]]*|\n+|$)\s*")
NEAR_DUPLICATE = 92.0  # rapidfuzz ratio on normalised text


@lru_cache(maxsize=1)
def _encoding():  # noqa: ANN202 - tiktoken Encoding.encode
    """cl100k_base from the BPE file llama-index ships (offline), without importing llama-index
    (seconds of a CLI cold start); the same callable ``llama_index.core.utils.get_tokenizer()`` builds.

    tiktoken's constructor would download the file; its loader is pointed at the shipped copy instead
    (named by tiktoken's own cache key, the SHA-1 of the URL)."""
    import hashlib
    import importlib.util
    from functools import partial
    from pathlib import Path
    from unittest import mock

    import tiktoken
    from tiktoken.load import load_tiktoken_bpe
    from tiktoken_ext import openai_public

    shipped = Path(importlib.util.find_spec("llama_index.core").submodule_search_locations[0]) / "_static" / "tiktoken_cache"

    def local(url: str, expected_hash: str | None = None) -> dict[bytes, int]:
        return load_tiktoken_bpe(str(shipped / hashlib.sha1(url.encode()).hexdigest()), expected_hash)

    with mock.patch.object(openai_public, "load_tiktoken_bpe", local):
        encoding = tiktoken.Encoding(**openai_public.cl100k_base())
    return partial(encoding.encode, allowed_special="all")


def count_tokens(text: str) -> int:
    """Tokens of ``text`` in ``cl100k_base``."""
    return len(_encoding()(text))


def _normalised(text: str) -> str:
    return " ".join(text.lower().split())


def _citation_quality(span: StitchedSpan) -> tuple:
    """Which of two duplicates to cite: one a reader can open (uri), then the fresher, then the better ranked."""
    first = span.chunks[0].payload
    return (bool(first.get(P.URI)), float(first.get(P.UPDATED_TS) or 0.0), -span.rank)


_FACT_WORD = re.compile(r"\w*[A-Z0-9]\w*")


def _facts(text: str) -> set[str]:
    """Names and numbers of a text: what makes two fills of one template different documents."""
    return set(_FACT_WORD.findall(text))


def _entity_ids(span: StitchedSpan) -> frozenset[str]:
    return frozenset(e for c in span.chunks for e in c.payload.get(P.ENTITY_IDS) or [])


def _near_duplicate(a: str, b: str) -> bool:
    if a == b:
        return True
    return min(len(a), len(b)) > 40 and fuzz.ratio(a, b) >= NEAR_DUPLICATE


def _same_content(span: StitchedSpan, norm: str, other: StitchedSpan, other_norm: str) -> bool:
    """One text stored twice, not two fills of one template (contracts, tickets, renewal emails that
    differ in a customer's name and a few values, or share a clause word for word): those differ in
    their entities or in a name or number, and collapsing them would drop the very document the query
    named."""
    if not _near_duplicate(norm, other_norm) or _entity_ids(span) != _entity_ids(other):
        return False
    return norm == other_norm or _facts(span.text) == _facts(other.text)


def drop_duplicates(spans: list[StitchedSpan]) -> list[StitchedSpan]:
    """Collapse (near-)duplicate spans, e.g. one email stored by two systems, into the better-cited one.

    The kept span takes the best rank and score of its group, so relevance order is unchanged."""
    groups: list[tuple[str, list[StitchedSpan]]] = []
    for span in spans:
        norm = _normalised(span.text)
        group = next((g for text, g in groups if _same_content(span, norm, g[0], text)), None)
        if group is None:
            groups.append((norm, [span]))
        else:
            group.append(span)
    kept = []
    for _, group in groups:
        best = max(group, key=_citation_quality)
        kept.append(replace(best, rank=min(s.rank for s in group), score=max(s.score for s in group)))
    return sorted(kept, key=lambda s: s.rank)


def select_spans(spans: list[StitchedSpan], *, top_k: int, max_tokens: int) -> list[StitchedSpan]:
    """The best spans that can still be shown: at most ``top_k``, stopping once the budget is spent.

    Neighbours are fetched only for these, which keeps stitching cheap."""
    chosen: list[StitchedSpan] = []
    used = 0
    for span in spans:
        if len(chosen) >= top_k or used >= max_tokens:
            break
        chosen.append(span)
        used += count_tokens(span.text)
    return chosen


def _sentence_ends(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """(start, end) of the whole sentences in ``text[start:end]``, as offsets into ``text``."""
    return [(start + m.start(), start + m.end()) for m in _SENTENCE.finditer(text[start:end]) if m.group(0).strip()]


def _fit_sentences(text: str, budget: int) -> str:
    """The longest prefix of whole sentences within ``budget`` tokens ("" if none fits)."""
    out, used = [], 0
    for start, end in _sentence_ends(text, 0, len(text)):
        n = count_tokens(text[start:end])
        if used + n > budget:
            break
        out.append(text[start:end])
        used += n
    return "".join(out).rstrip()


def _hit_range(span: StitchedSpan) -> tuple[int, int]:
    """Where the chunks that matched the query lie in ``span.text`` (neighbours are outside)."""
    hits = [c for c in span.ordered if int(c.payload[P.CHUNK_INDEX]) in span.hit_indexes] or list(span.ordered)
    return (hits[0].payload[P.SPAN_START] - span.start, max(c.payload[P.SPAN_END] for c in hits) - span.start)


def _fit_around_hit(span: StitchedSpan, budget: int) -> tuple[int, int]:
    """The part of ``span.text`` to show within ``budget`` tokens: the hit first, then neighbour sentences.

    Neighbours are context, the hit is the evidence: over budget, the neighbours' sentences go first
    (the following text, then the preceding text nearest to the hit); a hit too long on its own is cut
    to its leading whole sentences. Returns offsets into ``span.text`` (empty range if nothing fits)."""
    text = span.text
    start, end = _hit_range(span)
    fitted = _fit_sentences(text[start:end], budget)
    if len(fitted) < len(text[start:end].rstrip()):
        return start, start + len(fitted)
    used = count_tokens(text[start:end])
    for s, e in _sentence_ends(text, end, len(text)):
        n = count_tokens(text[s:e])
        if used + n > budget:
            break
        end, used = e, used + n
    for s, e in reversed(_sentence_ends(text, 0, start)):
        n = count_tokens(text[s:e])
        if used + n > budget:
            break
        start, used = s, used + n
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


@dataclass(frozen=True)
class Packed:
    """Passages and citations that fit, the context string, its tokens, and whether anything was cut."""

    passages: tuple[Passage, ...]
    citations: tuple[Citation, ...]
    context: str
    tokens: int
    truncated: bool


def _passage(span: StitchedSpan, number: int, cut: tuple[int, int] | None = None) -> Passage:
    """One numbered passage; a cut passage's span and pages are those of the text it keeps."""
    first = span.ordered[0].payload
    cut = cut or (0, len(span.text))
    text, start, end = span.text[cut[0]:cut[1]], span.offset_at(cut[0]), span.offset_at(cut[1])
    pages = sorted({p for c in span.chunks if c.payload[P.SPAN_START] < end and c.payload[P.SPAN_END] > start
                    for p in c.payload.get(P.PAGES) or []})
    entity_ids = sorted({e for c in span.chunks for e in c.payload.get(P.ENTITY_IDS) or []})
    updated = max((c.payload.get(P.UPDATED_AT) or "" for c in span.chunks), default="") or None
    return Passage(
        citation=number, doc_id=span.doc_id, chunk_ids=tuple(c.point_id for c in span.ordered),
        text=text, score=round(span.score, 6), source=first[P.SOURCE], title=first[P.TITLE],
        uri=first.get(P.URI), start=start, end=end, pages=tuple(pages),
        updated_at=updated, entity_ids=tuple(entity_ids),
        content_hashes=tuple(c.payload.get(P.CONTENT_HASH, "") for c in span.ordered), flags=passage_flags(text),
    )


def _citation(passage: Passage) -> Citation:
    return Citation(
        passage.citation, passage.doc_id, passage.title, passage.source, passage.uri,
        passage.start, passage.end, passage.pages,
    )


def _render(passages: list[Passage]) -> str:
    # Only the pack numbers passages: markers inside document text are neutralised here, not in p.text.
    return "\n\n".join(f"[{p.citation}] {neutralise_markers(p.text)}" for p in passages)


def pack_passages(spans: list[StitchedSpan], *, top_k: int, max_tokens: int) -> Packed:
    """Number spans in relevance order and fit them into ``max_tokens`` (whole sentences only)."""
    passages: list[Passage] = []
    used, truncated = 0, False
    for span in spans:
        if len(passages) >= top_k:
            break
        number = len(passages) + 1
        overhead = count_tokens(f"[{number}] ") + (2 if passages else 0)  # "\n\n" between passages
        cut = None
        if used + overhead + count_tokens(span.text) > max_tokens:
            truncated = True
            cut = _fit_around_hit(span, max_tokens - used - overhead)
            if cut[1] <= cut[0]:
                continue
        passage = _passage(span, number, cut)
        passages.append(passage)
        used += overhead + count_tokens(passage.text)
    return render_within(passages, max_tokens=max_tokens, truncated=truncated)


def render_within(passages: list[Passage], *, max_tokens: int, truncated: bool = False) -> Packed:
    """The context string of ``passages``, dropping the last ones until it fits ``max_tokens``."""
    passages = list(passages)
    context = _render(passages)
    tokens = count_tokens(context) if context else 0
    while passages and tokens > max_tokens:  # BPE merges across joins can differ from the sum of parts
        passages.pop()
        truncated = True
        context = _render(passages)
        tokens = count_tokens(context) if context else 0
    return Packed(tuple(passages), tuple(_citation(p) for p in passages), context, tokens, truncated)
