"""Tokens of the LLM that reads a context pack: tiktoken's ``cl100k_base`` (the encoding llama-index
ships offline), and exact counts of joined texts from the counts of their parts.

Why joined counts are exact: tiktoken splits text into pieces with one regex (no look-behind) and
runs BPE inside each piece, so a text's count is the sum of its pieces' counts. At a *safe cut* — an
ASCII letter or digit followed by an ASCII character that is neither — a piece always ends, whatever
follows, and the text on each side splits into the same pieces alone; so ``count(a + b) == count(a) +
count(b)`` when ``len(a)`` is a safe cut of ``a + b``. A join that is not safe is recounted over the
few characters between the nearest safe cuts on either side. Chunk counts are stored at ingest
(``core.payload.TOKENS``), so the pack counts only those seams instead of every passage and context.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

TOKENIZER_NAME = "cl100k_base"
# The split pattern the argument above was made for; another one disables joined counting.
_CL100K_PATTERN = (r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$"""
                   r"""|\s*[\r\n]|\s+(?!\S)|\s""")
_SPECIAL_START = "<|"  # every special token of cl100k_base starts so; tiktoken matches them before splitting


@lru_cache(maxsize=1)
def _tokenizer():  # noqa: ANN202 - (encode, encode_ordinary, whether joined counts are exact)
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
        spec = openai_public.cl100k_base()
    encoding = tiktoken.Encoding(**spec)
    return partial(encoding.encode, allowed_special="all"), encoding.encode_ordinary, spec["pat_str"] == _CL100K_PATTERN


def count_tokens(text: str) -> int:
    """Tokens of ``text`` in ``cl100k_base``."""
    return len(_tokenizer()[0](text))


def _count_plain(text: str) -> int:
    """Tokens of text known to hold no special token (skips tiktoken's special-token handling)."""
    if not text:
        return 0
    return _count_short(text) if len(text) <= _SHORT else len(_tokenizer()[1](text))


_SHORT = 256  # characters: the seams and chunk edges ``count_joined`` counts are a few words long


@lru_cache(maxsize=8192)
def _count_short(text: str) -> int:
    """The same chunks meet again from one request to the next, so their seams and edges repeat:
    counted once (~0.2 ms of a fixture request's ~5 ms of CPU; at most ~2 MB kept)."""
    return len(_tokenizer()[1](text))


# A safe cut, as the offset of the character after it (look-behind reads the real string at ``pos``).
_SAFE_CUT = re.compile(r"(?<=[A-Za-z0-9])[\x00-\x2f\x3a-\x40\x5b-\x60\x7b-\x7f]")
_SAFE_CUT_REVERSED = re.compile(r"[\x00-\x2f\x3a-\x40\x5b-\x60\x7b-\x7f](?=[A-Za-z0-9])")


def first_safe_cut(text: str, start: int = 1) -> int:
    """The first safe cut at or after ``start``, or ``len(text)`` if there is none."""
    match = _SAFE_CUT.search(text, max(start, 1))
    return match.start() if match else len(text)


def last_safe_cut(text: str) -> int:
    """The last safe cut of ``text``, or 0 if there is none."""
    match = _SAFE_CUT_REVERSED.search(text[::-1])
    return len(text) - match.start() - 1 if match else 0


def count_joined(parts: Sequence[tuple[str, int | None]]) -> int:
    """Exact tokens of the texts of ``parts`` joined, given the known count of each part (None: unknown).

    Known parts count only their edges (up to their first and after their last safe cut) again, together
    with their neighbours; unknown parts are counted whole, with them."""
    joined = "".join(text for text, _ in parts)
    if not joined:
        return 0
    if not _tokenizer()[2] or _SPECIAL_START in joined:
        return count_tokens(joined)
    total, seam = 0, []  # seam: text since the last known part's last safe cut, counted as one
    for text, known in parts:
        head, tail = (first_safe_cut(text), last_safe_cut(text)) if known is not None else (len(text), len(text))
        if known is None or head > tail or head == len(text):
            seam.append(text)
            continue
        seam.append(text[:head])
        total += _count_plain("".join(seam)) + known - _count_plain(text[:head]) - _count_plain(text[tail:])
        seam = [text[tail:]]
    return total + _count_plain("".join(seam))


def count_suffix(text: str, known: int, start: int) -> int:
    """Exact tokens of ``text[start:]`` given ``known`` tokens of ``text``: only the cut-off head and the
    stretch up to the first safe cut after ``start`` are counted."""
    if start <= 0:
        return known
    cut = first_safe_cut(text, start)
    if cut >= len(text) or not _tokenizer()[2] or _SPECIAL_START in text:
        return count_tokens(text[start:])
    return known - _count_plain(text[:cut]) + _count_plain(text[start:cut])
