"""Context stitching: pull each hit's neighbour chunks (ACL-filtered) and merge adjacent or
overlapping spans of one document into one passage."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from core import payload as P
from core.models import Hit
from core.store.protocol import VectorStore


@dataclass
class StitchedSpan:
    """Contiguous chunks of one document, scored by their best hit."""

    doc_id: str
    score: float
    rank: int
    chunks: list[Hit] = field(default_factory=list)

    @property
    def start(self) -> int:
        return min(c.payload[P.SPAN_START] for c in self.chunks)

    @property
    def end(self) -> int:
        return max(c.payload[P.SPAN_END] for c in self.chunks)

    @property
    def text(self) -> str:
        """Chunk texts laid at their offsets: overlaps are written once."""
        parts: list[str] = []
        cursor = None
        for chunk in sorted(self.chunks, key=lambda c: c.payload[P.SPAN_START]):
            start, end, body = chunk.payload[P.SPAN_START], chunk.payload[P.SPAN_END], chunk.payload[P.TEXT]
            if cursor is None or start >= cursor:
                if cursor is not None:
                    parts.append("\n\n" if start > cursor else "")
                parts.append(body)
            elif end > cursor:
                parts.append(body[cursor - start :])
            cursor = end if cursor is None else max(cursor, end)
        return "".join(parts)


def stitch_hits(
    hits: list[Hit], store: VectorStore, *, acl_tokens: Collection[str], window: int
) -> list[StitchedSpan]:
    """Group hits by document, add neighbours within ``window`` positions, merge contiguous runs."""
    by_doc: dict[str, list[tuple[int, Hit]]] = {}
    for rank, hit in enumerate(hits):
        by_doc.setdefault(hit.payload[P.DOC_ID], []).append((rank, hit))
    spans: list[StitchedSpan] = []
    for doc_id, ranked in by_doc.items():
        have = {h.payload[P.CHUNK_INDEX]: h for _, h in ranked}
        wanted: set[int] = set()
        for index in have:
            count = int(have[index].payload.get(P.CHUNK_COUNT) or index + window + 1)
            wanted.update(i for i in range(index - window, index + window + 1) if 0 <= i < count)
        missing = wanted - set(have)
        neighbours = store.fetch_chunks(doc_id, missing, acl_tokens=acl_tokens) if missing else []
        chunks = {**{n.payload[P.CHUNK_INDEX]: n for n in neighbours}, **have}
        best = {h.payload[P.CHUNK_INDEX]: (rank, h.score) for rank, h in ranked}
        spans.extend(_runs(doc_id, chunks, best))
    return sorted(spans, key=lambda s: s.rank)


def _runs(doc_id: str, chunks: dict[int, Hit], best: dict[int, tuple[int, float]]) -> list[StitchedSpan]:
    runs: list[StitchedSpan] = []
    current: StitchedSpan | None = None
    previous = None
    for index in sorted(chunks):
        if current is None or index != previous + 1:
            current = StitchedSpan(doc_id, float("-inf"), 1 << 30)
            runs.append(current)
        current.chunks.append(chunks[index])
        if index in best:
            rank, score = best[index]
            current.rank = min(current.rank, rank)
            current.score = max(current.score, score)
        previous = index
    # A run made only of neighbours cannot exist: every run contains a hit by construction.
    return [r for r in runs if r.rank < 1 << 30]
