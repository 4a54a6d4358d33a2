"""Context stitching: merge ranked chunk hits of one document into contiguous spans, then widen
the spans that will be shown with their neighbour chunks (fetched with the ACL filter inside the
store, and checked again here) so a passage reads as continuous text with one citation.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

from core import payload as P
from core.access import is_visible
from core.lazy import cached_attribute
from core.models import Hit
from core.store.protocol import VectorStore
from core.tokens import count_joined, count_suffix

_UNRANKED = 1 << 30


def _gap_filler(gap: int) -> str:
    """Stand-in for the text between two chunks, as long as the gap so offsets stay exact."""
    if gap <= 0:
        return ""
    return " " if gap == 1 else "\n\n" + " " * (gap - 2)


@dataclass(frozen=True)
class StitchedSpan:
    """Contiguous chunks of one document, ranked by their best hit."""

    doc_id: str
    score: float
    rank: int
    chunks: tuple[Hit, ...] = ()
    hits: frozenset[int] = frozenset()  # chunk indexes that matched the query; the rest are neighbours

    @property
    def hit_indexes(self) -> frozenset[int]:
        return self.hits or frozenset(self.indexes)

    @cached_attribute
    def ordered(self) -> tuple[Hit, ...]:
        return tuple(sorted(self.chunks, key=lambda c: c.payload[P.SPAN_START]))

    @property
    def start(self) -> int:
        return min(c.payload[P.SPAN_START] for c in self.chunks)

    @property
    def end(self) -> int:
        return max(c.payload[P.SPAN_END] for c in self.chunks)

    @property
    def indexes(self) -> tuple[int, ...]:
        return tuple(sorted(int(c.payload[P.CHUNK_INDEX]) for c in self.chunks))

    @cached_attribute
    def parts(self) -> tuple[tuple[str, int | None], ...]:
        """Chunk texts laid at their offsets, overlaps written once, gaps filled; each with its tokens
        (from the payload; None where not stored: a gap filler, a chunk of a 0.3.0 store)."""
        parts: list[tuple[str, int | None]] = []
        cursor: int | None = None
        for chunk in self.ordered:
            start, end, body = chunk.payload[P.SPAN_START], chunk.payload[P.SPAN_END], chunk.payload[P.TEXT]
            known = chunk.payload.get(P.TOKENS)
            if cursor is None or start >= cursor:
                if cursor is not None and start > cursor:
                    parts.append((_gap_filler(start - cursor), None))
                parts.append((body, known))
            elif end > cursor:
                cut = cursor - start
                parts.append((body[cut:], None if known is None else count_suffix(body, known, cut)))
            cursor = end if cursor is None else max(cursor, end)
        return tuple(parts)

    @cached_attribute
    def text(self) -> str:
        """The span's text: ``len(text) == end - start``."""
        return "".join(text for text, _ in self.parts)

    @cached_attribute
    def tokens(self) -> int:
        """Tokens of ``text`` in the pack's tokenizer, exact (core.tokens), from the chunks' stored counts."""
        return count_joined(self.parts)

    def offset_at(self, position: int) -> int:
        """Document offset of character ``position`` of ``text``."""
        return self.start + position


def _runs(doc_id: str, chunks: dict[int, Hit], best: dict[int, tuple[int, float]]) -> list[StitchedSpan]:
    """Split one document's chunks into runs of consecutive positions; keep runs holding a hit."""
    runs: list[list[int]] = []
    for index in sorted(chunks):
        if runs and index == runs[-1][-1] + 1:
            runs[-1].append(index)
        else:
            runs.append([index])
    spans = []
    for run in runs:
        ranked = [best[i] for i in run if i in best]
        if not ranked:  # only neighbours: cannot happen for fetched windows, but never show one alone
            continue
        spans.append(StitchedSpan(doc_id, max(s for _, s in ranked), min(r for r, _ in ranked),
                                  tuple(chunks[i] for i in run), frozenset(i for i in run if i in best)))
    return spans


def merge_hits(hits: Iterable[Hit]) -> list[StitchedSpan]:
    """Hits grouped by document, consecutive chunks merged; spans in order of their best hit."""
    by_doc: dict[str, dict[int, Hit]] = {}
    best: dict[str, dict[int, tuple[int, float]]] = {}
    for rank, hit in enumerate(hits):
        doc_id, index = hit.payload[P.DOC_ID], int(hit.payload[P.CHUNK_INDEX])
        if index in by_doc.setdefault(doc_id, {}):
            continue
        by_doc[doc_id][index] = hit
        best.setdefault(doc_id, {})[index] = (rank, hit.score)
    spans = [span for doc_id in by_doc for span in _runs(doc_id, by_doc[doc_id], best[doc_id])]
    return sorted(spans, key=lambda s: s.rank)


def _hit_ranks(span: StitchedSpan) -> dict[int, tuple[int, float]]:
    """Rank and score of a span's hits; neighbours already stitched in count as unranked."""
    return {index: (span.rank, span.score) for index in span.hit_indexes}


def _wanted(doc_spans: list[StitchedSpan], window: int) -> set[int]:
    wanted: set[int] = set()
    for span in doc_spans:
        first, last = span.indexes[0], span.indexes[-1]
        count = int(span.chunks[0].payload.get(P.CHUNK_COUNT) or last + window + 1)
        wanted.update(i for i in range(first - window, last + window + 1) if 0 <= i < count)
    return wanted - {int(c.payload[P.CHUNK_INDEX]) for s in doc_spans for c in s.chunks}


def widen_spans(
    spans: list[StitchedSpan], store: VectorStore, *, acl_tokens: Collection[str], window: int
) -> list[StitchedSpan]:
    """Add up to ``window`` neighbour chunks on each side of every span (one fetch for all documents).

    Neighbours come from an ACL-filtered fetch and are re-checked against ``acl_tokens``; spans of
    one document that become adjacent are merged (best rank and score kept)."""
    if window <= 0 or not spans:
        return spans
    by_doc: dict[str, list[StitchedSpan]] = {}
    for span in spans:
        by_doc.setdefault(span.doc_id, []).append(span)
    wanted = {doc_id: missing for doc_id, doc_spans in by_doc.items() if (missing := _wanted(doc_spans, window))}
    neighbours: dict[str, dict[int, Hit]] = {}
    for n in store.fetch_neighbours(wanted, acl_tokens=acl_tokens) if wanted else []:
        doc_id, index = n.payload.get(P.DOC_ID), int(n.payload[P.CHUNK_INDEX])
        if index in wanted.get(doc_id, ()) and is_visible(n.payload.get(P.ACL) or (), acl_tokens):
            neighbours.setdefault(doc_id, {})[index] = n
    widened: list[StitchedSpan] = []
    for doc_id, doc_spans in by_doc.items():
        have = {int(c.payload[P.CHUNK_INDEX]): c for s in doc_spans for c in s.chunks}
        best: dict[int, tuple[int, float]] = {}
        for span in doc_spans:
            best.update(_hit_ranks(span))
        widened.extend(_runs(doc_id, {**neighbours.get(doc_id, {}), **have}, best))
    return sorted(widened, key=lambda s: s.rank)


def stitch_hits(
    hits: list[Hit], store: VectorStore, *, acl_tokens: Collection[str], window: int
) -> list[StitchedSpan]:
    """Merge hits into spans and widen every span with its neighbours."""
    return widen_spans(merge_hits(hits), store, acl_tokens=acl_tokens, window=window)
