"""Reflow PDF lines into paragraphs.

pdfminer (under unstructured's ``fast`` strategy) returns each visual line of a justified or
ragged paragraph as its own element, and often calls a wrapped line a Title. Left alone, every line
wrap becomes a paragraph break mid-sentence ("between Northwind" / "Systems B.V."), the wrapped line
becomes a bogus section heading, and chunks split inside sentences. A line that does not end a
sentence is joined with the next line on the same page unless that line looks like a real heading
(short, capitalised, no sentence punctuation). Lines are never joined across pages, so each block's
page number stays exact.
"""

from __future__ import annotations

import re

from ingest.partition import Block

_ENDS_SENTENCE = re.compile(r"[.!?:;][\"')\]]*$")
_HEADING_WORDS = 8


def _looks_like_heading(text: str) -> bool:
    words = text.split()
    return (len(words) <= _HEADING_WORDS and text[:1].isupper() and not _ENDS_SENTENCE.search(text)
            and not text.endswith((",", "(", "-")))


def _continues(previous: Block, block: Block) -> bool:
    if previous.page != block.page or previous.kind not in ("text", "title", "list"):
        return False
    if block.kind not in ("text", "title") or _ENDS_SENTENCE.search(previous.text):
        return False
    if _looks_like_heading(previous.text) and (previous.kind == "title" or block.text[:1].isupper()):
        return False  # a heading (even one pdfminer calls text) followed by its first paragraph
    return block.kind == "text" or not _looks_like_heading(block.text) or block.text[:1].islower()


def _join(a: str, b: str) -> str:
    if a.endswith("-") and a[-2:-1].isalpha() and b[:1].islower():
        return a + b  # a word broken at the line end ("Route-" / "planner" → "Route-planner")
    return f"{a} {b}"


def reflow_lines(blocks: list[Block]) -> list[Block]:
    """Blocks with wrapped lines of one paragraph joined (same page only)."""
    out: list[Block] = []
    for block in blocks:
        if out and _continues(out[-1], block):
            previous = out[-1]
            kind = "text" if previous.kind == "title" else previous.kind
            out[-1] = Block(_join(previous.text, block.text), kind, previous.page, previous.depth)
        else:
            out.append(block)
    return out
