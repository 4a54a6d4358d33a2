"""Dedupe stitched spans, pack them to a token budget without cutting sentences, and cite them.

Tokens are counted with tiktoken's ``cl100k_base`` (the encoding llama-index ships offline),
a fair proxy for the LLM that reads the context; exactly, from the counts stored with each chunk
(core.tokens), so a request tokenizes only the seams between texts and the sentences it cuts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np
from rapidfuzz import fuzz

from core import payload as P
from core.models import Citation, Passage
from core.tokens import count_joined, count_tokens
from retrieval.stitch import StitchedSpan
from retrieval.untrusted import neutralise_markers, passage_flags

_SENTENCE = re.compile(r"[^.!?\n]+(?:[.!?]+[\"')\]]*|\n+|$)\s*")
NEAR_DUPLICATE = 92.0  # rapidfuzz ratio on normalised text
_BUCKETS = 256  # character histogram size of the near-duplicate pre-check


@lru_cache(maxsize=256)
def _number_tokens(number: int) -> int:
    """Tokens of a passage's ``[n] `` prefix on its own (the budget's per-passage overhead)."""
    return count_tokens(f"[{number}] ")


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
    # the cutoff lets rapidfuzz give up early (lengths too far apart): same answer, a fraction of the time
    return min(len(a), len(b)) > 40 and fuzz.ratio(a, b, score_cutoff=NEAR_DUPLICATE) >= NEAR_DUPLICATE


def _histogram(norm: str) -> np.ndarray:
    """Character counts of a text, code points folded into ``_BUCKETS`` buckets."""
    codes = np.frombuffer(norm.encode("utf-32-le"), dtype=np.uint32)
    return np.bincount(codes & (_BUCKETS - 1), minlength=_BUCKETS)


def _may_be_near(histogram: np.ndarray, length: int, kept: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Which kept texts could be near duplicates of this one: rapidfuzz's ratio is
    ``100 · (1 − indel / (len a + len b))``, and each insertion or deletion changes one character count by
    one (folding counts into buckets only merges them), so the histograms' L1 distance is a lower bound of
    the indel distance. Pairs it rules out would score below ``NEAR_DUPLICATE``: the same answer without
    comparing ~150 pairs of 1,000-character texts per request; the few left are compared as before."""
    if not len(kept):
        return np.zeros(0, dtype=bool)
    lower = np.abs(kept - histogram).sum(axis=1)
    return lower * 100.0 <= (100.0 - NEAR_DUPLICATE) * (lengths + length) + 1e-6


@dataclass(frozen=True)
class _Seen:
    """What dedupe compares of a span, computed once per span rather than once per comparison."""

    span: StitchedSpan
    norm: str
    entity_ids: frozenset[str]


def _same_content(span: _Seen, other: _Seen) -> bool:
    """One text stored twice, not two fills of one template (contracts, tickets, renewal emails that
    differ in a customer's name and a few values, or share a clause word for word): those differ in
    their entities or in a name or number, and collapsing them would drop the very document the query
    named."""
    if span.entity_ids != other.entity_ids or not _near_duplicate(span.norm, other.norm):
        return False
    return span.norm == other.norm or _facts(span.span.text) == _facts(other.span.text)


def drop_duplicates(spans: list[StitchedSpan]) -> list[StitchedSpan]:
    """Collapse (near-)duplicate spans, e.g. one email stored by two systems, into the better-cited one.

    The kept span takes the best rank and score of its group, so relevance order is unchanged."""
    groups: list[list[_Seen]] = []
    histograms = np.zeros((len(spans), _BUCKETS), dtype=np.int64)  # of each group's first span
    lengths = np.zeros(len(spans), dtype=np.int64)
    for span in spans:
        seen = _Seen(span, _normalised(span.text), _entity_ids(span))
        histogram = _histogram(seen.norm)
        near = _may_be_near(histogram, len(seen.norm), histograms[: len(groups)], lengths[: len(groups)])
        group = next((g for g, maybe in zip(groups, near) if maybe and _same_content(seen, g[0])), None)
        if group is None:
            histograms[len(groups)], lengths[len(groups)] = histogram, len(seen.norm)
            groups.append([seen])
        else:
            group.append(seen)
    kept = []
    for group in groups:
        if len(group) == 1:  # nothing to take over (and the span keeps its computed text and tokens)
            kept.append(group[0].span)
            continue
        members = [s.span for s in group]
        best = max(members, key=_citation_quality)
        kept.append(replace(best, rank=min(s.rank for s in members), score=max(s.score for s in members)))
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
        used += span.tokens
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
    newest = max(span.chunks, key=lambda c: c.payload.get(P.UPDATED_AT) or "").payload
    updated = newest.get(P.UPDATED_AT) or None
    return Passage(
        citation=number, doc_id=span.doc_id, chunk_ids=tuple(c.point_id for c in span.ordered),
        text=text, score=round(span.score, 6), source=first[P.SOURCE], title=first[P.TITLE],
        uri=first.get(P.URI), start=start, end=end, pages=tuple(pages),
        updated_at=updated, updated_source=newest.get(P.UPDATED_SOURCE) if updated else None,
        entity_ids=tuple(entity_ids),
        content_hashes=tuple(c.payload.get(P.CONTENT_HASH, "") for c in span.ordered), flags=passage_flags(text),
    )


def _citation(passage: Passage) -> Citation:
    return Citation(
        passage.citation, passage.doc_id, passage.title, passage.source, passage.uri,
        passage.start, passage.end, passage.pages,
    )


def _rendered(passages: list[Passage], counts: Mapping[str, int]) -> list[tuple[str, int | None]]:
    """The parts of the context string, with the tokens of passage texts known unchanged by rendering.

    Only the pack numbers passages: markers inside document text are neutralised here, not in p.text."""
    parts: list[tuple[str, int | None]] = []
    for p in passages:
        text = neutralise_markers(p.text)
        parts += [("\n\n" if parts else "", None), (f"[{p.citation}] ", None), (text, counts.get(text))]
    return parts


def pack_passages(spans: list[StitchedSpan], *, top_k: int, max_tokens: int) -> Packed:
    """Number spans in relevance order and fit them into ``max_tokens`` (whole sentences only)."""
    passages: list[Passage] = []
    counts: dict[str, int] = {}  # tokens of each passage's text
    used, truncated = 0, False
    for span in spans:
        if len(passages) >= top_k:
            break
        number = len(passages) + 1
        overhead = _number_tokens(number) + (2 if passages else 0)  # "\n\n" between passages
        cut = None
        if used + overhead + span.tokens > max_tokens:
            truncated = True
            cut = _fit_around_hit(span, max_tokens - used - overhead)
            if cut[1] <= cut[0]:
                continue
        passage = _passage(span, number, cut)
        passages.append(passage)
        counts[passage.text] = span.tokens if cut is None else count_tokens(passage.text)
        used += overhead + counts[passage.text]
    return render_within(passages, max_tokens=max_tokens, truncated=truncated, counts=counts)


def render_within(passages: list[Passage], *, max_tokens: int, truncated: bool = False,
                  counts: Mapping[str, int] | None = None) -> Packed:
    """The context string of ``passages``, dropping the last ones until it fits ``max_tokens``.

    ``counts``: tokens of passage texts already counted (the context's count stays exact without them)."""
    passages = list(passages)
    parts = _rendered(passages, counts or {})
    tokens = count_joined(parts)
    while passages and tokens > max_tokens:  # BPE merges across joins can differ from the sum of parts
        passages.pop()
        truncated = True
        del parts[-3:]
        tokens = count_joined(parts)
    context = "".join(text for text, _ in parts)
    return Packed(tuple(passages), tuple(_citation(p) for p in passages), context, tokens, truncated)
