"""Dedupe stitched spans, pack them to a token budget without cutting sentences, and cite them.

Tokens are counted with tiktoken's ``cl100k_base`` (the encoding llama-index ships offline),
a fair proxy for the LLM that reads the context.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from rapidfuzz import fuzz

from core import payload as P
from core.models import Citation, Passage
from retrieval.stitch import StitchedSpan

TOKENIZER_NAME = "cl100k_base"
_SENTENCE = re.compile(r"[^.!?\n]+(?:[.!?]+[\"')\]]*|\n+|$)\s*")
NEAR_DUPLICATE = 92.0  # rapidfuzz ratio on normalised text


@lru_cache(maxsize=1)
def _encoding():  # noqa: ANN202 - tiktoken Encoding
    from llama_index.core.utils import get_tokenizer

    return get_tokenizer()


def count_tokens(text: str) -> int:
    """Tokens of ``text`` in ``cl100k_base``."""
    return len(_encoding()(text))


def _normalised(text: str) -> str:
    return " ".join(text.lower().split())


def drop_duplicates(spans: list[StitchedSpan]) -> list[StitchedSpan]:
    """Drop spans whose text (near-)duplicates a better-ranked span's text, e.g. an email quoted in a ticket."""
    kept: list[tuple[StitchedSpan, str]] = []
    for span in spans:
        norm = _normalised(span.text)
        duplicate = any(
            norm == other or (min(len(norm), len(other)) > 40 and fuzz.ratio(norm, other) >= NEAR_DUPLICATE)
            for _, other in kept
        )
        if not duplicate:
            kept.append((span, norm))
    return [span for span, _ in kept]


def _fit_sentences(text: str, budget: int) -> str:
    """The longest prefix of whole sentences within ``budget`` tokens ("" if none fits)."""
    out, used = [], 0
    for match in _SENTENCE.finditer(text):
        sentence = match.group(0)
        if not sentence.strip():
            continue
        n = count_tokens(sentence)
        if used + n > budget:
            break
        out.append(sentence)
        used += n
    return "".join(out).rstrip()


@dataclass(frozen=True)
class Packed:
    """Passages and citations that fit, the context string, its tokens, and whether anything was cut."""

    passages: tuple[Passage, ...]
    citations: tuple[Citation, ...]
    context: str
    tokens: int
    truncated: bool


def pack_passages(spans: list[StitchedSpan], *, top_k: int, max_tokens: int) -> Packed:
    """Number spans in relevance order, fit them into ``max_tokens``, and build citations."""
    passages: list[Passage] = []
    citations: list[Citation] = []
    blocks: list[str] = []
    used, truncated = 0, False
    for span in spans[:top_k]:
        number = len(passages) + 1
        prefix = f"[{number}] "
        separator = 2 if blocks else 0  # "\n\n" between passages
        overhead = count_tokens(prefix) + separator
        text = span.text
        cost = overhead + count_tokens(text)
        if used + cost > max_tokens:
            truncated = True
            text = _fit_sentences(text, max_tokens - used - overhead)
            if not text:
                continue
            cost = overhead + count_tokens(text)
        first = min(span.chunks, key=lambda c: c.payload[P.SPAN_START]).payload
        start = span.start
        end = start + len(text) if text != span.text else span.end
        pages = sorted({p for c in span.chunks if c.payload[P.SPAN_START] < end for p in c.payload.get(P.PAGES) or []})
        entity_ids = sorted({e for c in span.chunks for e in c.payload.get(P.ENTITY_IDS) or []})
        passages.append(
            Passage(
                citation=number, doc_id=span.doc_id, chunk_ids=tuple(c.point_id for c in span.chunks),
                text=text, score=round(span.score, 6), source=first[P.SOURCE], title=first[P.TITLE],
                uri=first.get(P.URI), start=start, end=end, pages=tuple(pages),
                updated_at=first.get(P.UPDATED_AT), entity_ids=tuple(entity_ids),
            )
        )
        citations.append(
            Citation(number, span.doc_id, first[P.TITLE], first[P.SOURCE], first.get(P.URI), start, end, tuple(pages))
        )
        blocks.append(prefix + text)
        used += cost
    context = "\n\n".join(blocks)
    return Packed(tuple(passages), tuple(citations), context, count_tokens(context) if context else 0, truncated)
