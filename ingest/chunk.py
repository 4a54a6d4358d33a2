"""Structure-aware chunking bounded by the embedding model's own tokenizer.

Blocks are grouped by section (a title starts a new group); blocks of one section are packed
together while they fit; a block too long for the window is split at sentence boundaries,
with a few sentences of overlap, and a sentence too long is split at token boundaries. The
embedded text is ``title › section path`` + chunk text, and the whole of it fits the window,
so the model never truncates (tests assert it).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Protocol

from core.models import Chunk, Document, Section, TokenIds
from core.payload import chunk_point_id

_SENTENCE_END = re.compile(r"(?<=[.!?;:])[\"')\]]*\s+|\n+")


class TokenCounter(Protocol):
    """Counts and cuts text in the embedder's tokens.

    A counter whose ``splits_at_words`` is true also offers ``tokens(texts)``: each text's token ids and
    their (start, end) character offsets. The chunker then counts a section's sentences from its section's
    tokens instead of tokenising them a second time, and gives each chunk the ids of its embedded text
    (``Chunk.embed_tokens``), so the encoder does not tokenise the chunk again (``_SectionTokens``)."""

    def count_tokens(self, texts: list[str]) -> list[int]: ...


_WHITESPACE = " \t\n\r"  # what BERT's pre-tokenizer splits words at (and nothing it deletes or joins)


def _at_word_edge(text: str, at: int) -> bool:
    """Whether a cut at ``at`` falls between words: tokenising each side alone gives the tokens of the whole."""
    return at <= 0 or at >= len(text) or text[at - 1] in _WHITESPACE or text[at] in _WHITESPACE


class _SectionTokens:
    """One section's tokens (ids and character offsets), read for the spans inside it.

    Exact for the embedder's WordPiece tokenizer when no token crosses a span's edge: its normaliser works
    character by character and it splits words at whitespace and punctuation before cutting word pieces,
    so a span that starts and ends at such a split tokenises alone into the tokens inside it. A span with a
    token across an edge is answered ``None`` (counted alone by the caller)."""

    def __init__(self, ids: list[int], spans: list[tuple[int, int]], base: int) -> None:
        self.ids, self._spans, self._base = ids, spans, base

    @cached_property
    def _starts(self) -> list[int]:
        return [a for a, _ in self._spans]

    def _range(self, start: int, end: int) -> tuple[int, int] | None:
        start, end = start - self._base, end - self._base
        first, stop = bisect_left(self._starts, start), bisect_left(self._starts, end)
        if (first and self._spans[first - 1][1] > start) or (stop and self._spans[stop - 1][1] > end):
            return None
        return first, stop

    def count(self, start: int, end: int) -> int | None:
        found = self._range(start, end)
        return None if found is None else found[1] - found[0]

    def ids_between(self, start: int, end: int) -> list[int] | None:
        found = self._range(start, end)
        return None if found is None else self.ids[found[0]:found[1]]


def _tokens_of(counter: TokenCounter) -> Callable[[list[str]], list[tuple[list[int], list[tuple[int, int]]]]] | None:
    return getattr(counter, "tokens", None) if getattr(counter, "splits_at_words", False) else None


def _section_counts(counter: TokenCounter, texts: list[str], starts: list[int]) -> tuple[list[int], list[_SectionTokens | None]]:
    """Each section's token count and, when the counter gives token ids and offsets, the section's tokens."""
    tokens_of = _tokens_of(counter)
    if tokens_of is None:
        return counter.count_tokens(texts), [None] * len(texts)
    tokens = [_SectionTokens(ids, spans, base) for (ids, spans), base in zip(tokens_of(texts), starts)]
    return [len(t.ids) for t in tokens], tokens


def _counts(counter: TokenCounter, text: str, spans: list[tuple[int, int]], known: _SectionTokens | None) -> list[int]:
    """Token counts of ``text[s:e]`` for each span: read off ``known`` where it can, the rest in one call."""
    counts = [known.count(s, e) if known is not None else None for s, e in spans]
    missing = [i for i, n in enumerate(counts) if n is None]
    if missing:
        for i, n in zip(missing, counter.count_tokens([text[spans[i][0]:spans[i][1]] for i in missing])):
            counts[i] = n
    return counts


class _BodyIds:
    """The ids of a span of the document's text, joined from its sections' tokens."""

    def __init__(self, text: str, sections: tuple[Section, ...], known: list[_SectionTokens | None]) -> None:
        self._text, self._sections, self._known = text, sections, known
        self._ends = [s.end for s in sections]
        # in text order, not overlapping (as assemble_document makes them); otherwise no ids are read off
        self._ordered = all(a.end <= b.start for a, b in zip(sections, sections[1:]))

    def __call__(self, start: int, end: int) -> list[int] | None:
        """None when the tokens cannot say: a cut inside a word, text between sections that is not
        whitespace, a section without tokens."""
        if not self._ordered:
            return None
        text, ids, cursor = self._text, [], start
        for index in range(bisect_right(self._ends, start), len(self._sections)):
            section, tokens = self._sections[index], self._known[index]
            if section.start >= end:
                break
            lo, hi = max(section.start, start), min(section.end, end)
            if (tokens is None or text[cursor:lo].strip(_WHITESPACE)
                    or not (_at_word_edge(text, lo) and _at_word_edge(text, hi))):
                return None
            part = tokens.ids if (lo, hi) == (section.start, section.end) else tokens.ids_between(lo, hi)
            if part is None:
                return None
            ids.extend(part)
            cursor = hi
        return None if text[cursor:end].strip(_WHITESPACE) else ids


@dataclass(frozen=True)
class ChunkingPolicy:
    """Window and overlap in the embedder's tokens (content tokens, specials excluded)."""

    max_tokens: int = 254
    overlap_tokens: int = 32
    # A section smaller than this is merged with the following sections of the same parent
    # (while the result fits one window), so a page of short headings does not become tiny chunks.
    merge_below_tokens: int = 96


def content_hash(text: str) -> str:
    """Hash of normalised text: equal for the same content arriving from two systems."""
    normalised = " ".join(unicodedata.normalize("NFKC", text).casefold().split())
    return hashlib.sha256(normalised.encode("utf-8")).hexdigest()[:32]


def embed_header(title: str, section_path: tuple[str, ...]) -> str:
    """The header the embedded text carries: document title and section path."""
    path = [p for p in section_path if p and p != title]
    return " › ".join([title, *path]) if title else " › ".join(path)


def _sentence_spans(text: str, start: int, end: int) -> list[tuple[int, int]]:
    spans, cursor = [], start
    for match in _SENTENCE_END.finditer(text, start, end):
        if match.start() > cursor:
            spans.append((cursor, match.start()))
        cursor = match.end()
    if cursor < end:
        spans.append((cursor, end))
    return [(s, e) for s, e in spans if text[s:e].strip()]


def _token_cut(text: str, start: int, end: int, budget: int, counter: TokenCounter) -> list[tuple[int, int, bool]]:
    """Split an over-long sentence at word boundaries into pieces of at most ``budget`` tokens.

    A "word" longer than the window (a base64 blob, a URL, CJK text without spaces) is cut inside
    the word; those pieces are flagged ``True`` so the packer keeps each one alone (two halves of one
    word joined again would be re-tokenized as one word, with a different count)."""
    words = [(m.start(), m.end()) for m in re.finditer(r"\S+", text[start:end])]
    counts = counter.count_tokens([text[start + s : start + e] for s, e in words])
    pieces: list[tuple[int, int, bool]] = []
    piece_start, used, last_end = None, 0, start
    for (s, e), n in zip(words, counts):
        if piece_start is not None and (used + n > budget or n > budget):
            pieces.append((piece_start, last_end, False))
            piece_start, used = None, 0
        if n > budget:
            pieces.extend((a, b, True) for a, b in _cut_word(text, start + s, start + e, budget, counter))
            continue
        if piece_start is None:
            piece_start = start + s
        used += n
        last_end = start + e
    if piece_start is not None:
        pieces.append((piece_start, last_end, False))
    return pieces


def _cut_word(text: str, start: int, end: int, budget: int, counter: TokenCounter) -> list[tuple[int, int]]:
    """Cut one over-long word into character spans of at most ``budget`` tokens each.

    Binary search on the prefix length: token counts of prefixes are not strictly monotonic (WordPiece
    turns a word over 100 characters into one [UNK]), so the invariant kept is only "the prefix
    chosen fits", which is what the window needs."""
    pieces = []
    while start < end:
        lo, hi = 1, end - start  # a single character always fits
        if counter.count_tokens([text[start:end]])[0] <= budget:
            lo = hi
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if counter.count_tokens([text[start : start + mid]])[0] <= budget:
                lo = mid
            else:
                hi = mid - 1
        pieces.append((start, start + lo))
        start += lo
    return pieces


class _Packer:
    """Accumulates (start, end, tokens) units of one section into chunk spans."""

    def __init__(self, budget: int, overlap: int) -> None:
        self.budget, self.overlap = budget, overlap
        self.spans: list[tuple[int, int]] = []
        self._units: list[tuple[int, int, int]] = []
        self._used = 0

    def add(self, start: int, end: int, tokens: int, *, separator: int = 1, overlap_ok: bool = False) -> None:
        cost = tokens + (separator if self._units else 0)
        if self._units and self._used + cost > self.budget:
            self._emit()
            if overlap_ok:
                self._carry_overlap(tokens)
            cost = tokens + (separator if self._units else 0)
        self._units.append((start, end, tokens))
        self._used += cost

    def add_alone(self, start: int, end: int, tokens: int) -> None:
        """A piece cut inside a word: a chunk of its own, no overlap carried into or out of it."""
        self._emit()
        self._units, self._used = [(start, end, tokens)], tokens
        self._emit()
        self._last = []

    def _carry_overlap(self, incoming: int) -> None:
        tail, used = [], 0
        for unit in reversed(self._last):
            if used + unit[2] > self.overlap or used + unit[2] + incoming + 2 > self.budget:
                break
            tail.insert(0, unit)
            used += unit[2] + 1
        self._units, self._used = tail, used

    def _emit(self) -> None:
        if self._units:
            self.spans.append((self._units[0][0], self._units[-1][1]))
            self._last = self._units
        self._units, self._used = [], 0

    def finish(self) -> list[tuple[int, int]]:
        self._emit()
        return self.spans


def _section_groups(sections: tuple[Section, ...]) -> list[list[int]]:
    """Indexes of sections, grouped so that a title starts a new group."""
    groups: list[list[int]] = []
    for index, section in enumerate(sections):
        starts_group = section.kind == "title" or not groups
        if groups and section.section_path != sections[groups[-1][-1]].section_path:
            starts_group = starts_group or sections[groups[-1][-1]].kind != "title"
        if starts_group:
            groups.append([index])
        else:
            groups[-1].append(index)
    return groups


@dataclass
class _Group:
    members: list[int]
    path: tuple[str, ...]
    tokens: int
    titles_only: bool


def _common_prefix(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[str, ...]:
    size = 0
    while size < min(len(a), len(b)) and a[size] == b[size]:
        size += 1
    return a[:size]


def _merge_small_groups(groups: list[_Group], fits: Callable[[int, tuple[str, ...]], bool], below: int) -> list[_Group]:
    """Fold heading-only groups into the next group, and small groups into following siblings/children."""
    merged: list[_Group] = []
    for group in groups:
        last = merged[-1] if merged else None
        if last is not None and last.titles_only:
            merged[-1] = _Group(last.members + group.members, group.path, last.tokens + group.tokens + 2,
                                group.titles_only)
            continue
        if last is not None and last.tokens < below:
            shared = _common_prefix(last.path, group.path)
            related = len(shared) >= max(len(last.path), len(group.path)) - 1
            if related and fits(last.tokens + group.tokens + 2, shared):
                merged[-1] = _Group(last.members + group.members, shared, last.tokens + group.tokens + 2, False)
                continue
        merged.append(group)
    return merged


def _fit_header(header: str, counter: TokenCounter, limit: int) -> tuple[str, int]:
    """The header, cut to at most ``limit`` tokens (a very long title must not eat the window)."""
    tokens = counter.count_tokens([header])[0] if header else 0
    while tokens > limit and header:
        header = header[: max(0, int(len(header) * limit / tokens) - 1)].rstrip()
        tokens = counter.count_tokens([header])[0] if header else 0
    return header, tokens


def _header_ids(header: str, counter: TokenCounter) -> list[int] | None:
    tokens_of = _tokens_of(counter)
    return None if tokens_of is None else (tokens_of([header])[0][0] if header else [])


def _pack_group(text: str, sections: tuple[Section, ...], group: _Group, counts: list[int],
                known: list[_SectionTokens | None], counter: TokenCounter, packer: _Packer) -> list[tuple[int, int]]:
    for index in group.members:
        section, tokens = sections[index], counts[index]
        if tokens <= packer.budget:
            packer.add(section.start, section.end, tokens, separator=2)
            continue
        sentences = _sentence_spans(text, section.start, section.end)
        sentence_counts = _counts(counter, text, sentences, known[index])  # not tokenised a second time
        for (s, e), n in zip(sentences, sentence_counts):
            if n <= packer.budget:
                packer.add(s, e, n, overlap_ok=True)
                continue
            pieces = _token_cut(text, s, e, packer.budget, counter)
            piece_counts = counter.count_tokens([text[ps:pe] for ps, pe, _ in pieces])
            for (ps, pe, inside_word), pn in zip(pieces, piece_counts):
                if inside_word:
                    packer.add_alone(ps, pe, pn)
                else:
                    packer.add(ps, pe, pn, overlap_ok=True)
    return packer.finish()


def chunk_document(document: Document, counter: TokenCounter, policy: ChunkingPolicy) -> list[Chunk]:
    """Split a document into token-bounded chunks with offsets, pages and section paths."""
    text = document.text
    sections = document.sections or (Section(0, len(text)),)
    counts, known = _section_counts(counter, [text[s.start : s.end] for s in sections], [s.start for s in sections])
    header_cache: dict[tuple[str, ...], tuple[str, int]] = {}

    def header_for(path: tuple[str, ...]) -> tuple[str, int]:
        if path not in header_cache:
            header_cache[path] = _fit_header(embed_header(document.title, path), counter, policy.max_tokens // 3)
        return header_cache[path]

    def budget_for(path: tuple[str, ...]) -> int:
        header, tokens = header_for(path)
        return policy.max_tokens - (tokens + 1 if header else 0)

    groups = [
        _Group(members, next((sections[i].section_path for i in reversed(members) if sections[i].section_path), ()),
               sum(counts[i] for i in members) + 2 * (len(members) - 1),
               all(sections[i].kind == "title" for i in members))
        for members in _section_groups(sections)
    ]
    groups = _merge_small_groups(groups, lambda n, path: n <= budget_for(path), policy.merge_below_tokens)
    spans: list[tuple[int, int, tuple[str, ...], str]] = []
    for group in groups:
        packer = _Packer(max(budget_for(group.path), 16), policy.overlap_tokens)
        header = header_for(group.path)[0]
        spans.extend((s, e, group.path, header) for s, e in _pack_group(text, sections, group, counts, known, counter, packer))
    header_ids = {header: _header_ids(header, counter) for header, _ in header_cache.values()}
    body_ids = _BodyIds(text, sections, known)
    return _make_chunks(document, spans, sections, lambda s, e, header: _embed_ids(header_ids[header], body_ids(s, e)))


def _embed_ids(header: list[int] | None, body: list[int] | None) -> tuple[int, ...] | None:
    return None if header is None or body is None else (*header, *body)  # "{header}\n{body}": a word edge


def _content_text(text: str, sections: tuple[Section, ...], start: int, end: int) -> str:
    """The chunk's text without headings: the same paragraph under two titles is the same content."""
    parts = [text[max(s.start, start) : min(s.end, end)] for s in sections
             if s.kind != "title" and s.start < end and s.end > start]
    return "\n".join(parts)


def _make_chunks(
    document: Document, spans: list[tuple[int, int, tuple[str, ...], str]], sections: tuple[Section, ...],
    ids_of: Callable[[int, int, str], tuple[int, ...] | None],
) -> list[Chunk]:
    chunks = []
    for index, (start, end, path, header) in enumerate(spans):
        body = document.text[start:end]
        embed_text = f"{header}\n{body}" if header else body
        ids = ids_of(start, end, header)
        pages = sorted({s.page for s in sections if s.page is not None and s.start < end and s.end > start})
        digest = content_hash(_content_text(document.text, sections, start, end) or body)
        chunks.append(
            Chunk(
                chunk_id=chunk_point_id(document.doc_id, index, digest),
                doc_id=document.doc_id,
                index=index,
                text=body,
                start=start,
                end=end,
                pages=tuple(pages),
                section_path=path,
                embed_text=embed_text,
                content_hash=digest,
                embed_tokens=None if ids is None else TokenIds(embed_text, ids),
            )
        )
    return chunks
