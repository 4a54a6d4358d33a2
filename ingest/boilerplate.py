"""Removal of text that is not content: page furniture, email reply chains and signatures, HTML chrome.

Each function is pure and works on one file's text or blocks, so every rule is tested on its own.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TypeVar

# Lines that start the quoted previous message of a reply; everything from there on is history.
_REPLY_HEADERS = (
    re.compile(r"^\s*On\b.{0,300}\bwrote:\s*$", re.IGNORECASE),
    re.compile(r"^\s*-{2,}\s*Original Message\s*-{2,}\s*$", re.IGNORECASE),
    re.compile(r"^\s*-{2,}\s*Forwarded message\s*-{2,}\s*$", re.IGNORECASE),
    re.compile(r"^\s*_{10,}\s*$"),  # Outlook's rule above "From: … Sent: …"
    re.compile(r"^\s*From:\s.+$"),  # only counted when a Sent:/Date: line follows (see _is_reply_header)
)
_SENT_LINE = re.compile(r"^\s*(Sent|Date):\s", re.IGNORECASE)
_SIGNATURE = re.compile(r"^(--|-- |__)\s*$")
_MOBILE_FOOTER = re.compile(r"^\s*Sent from my \w+", re.IGNORECASE)

# HTML elements and class/id/role words that mark site chrome rather than content.
_CHROME_TAGS = ("nav", "header", "footer", "aside", "script", "style", "noscript", "form", "template", "svg")
_CHROME_WORDS = re.compile(
    r"(^|[\s_-])(cookie|cookies|consent|gdpr|banner|navbar|nav|menu|breadcrumbs?|sidebar|skip-link|"
    r"site-header|site-footer|footer|header|social|share)([\s_-]|$)",
    re.IGNORECASE,
)

B = TypeVar("B")


def _is_reply_header(lines: list[str], index: int) -> bool:
    line = lines[index]
    for pattern in _REPLY_HEADERS[:-1]:
        if pattern.match(line):
            return True
    if _REPLY_HEADERS[-1].match(line):
        following = [candidate for candidate in lines[index + 1 : index + 4] if candidate.strip()]
        return any(_SENT_LINE.match(candidate) for candidate in following)
    return False


def strip_email_noise(body: str) -> str:
    """The newest message of an email body: quoted replies, reply chains and the signature removed."""
    lines = body.replace("\r\n", "\n").split("\n")
    kept: list[str] = []
    for index, line in enumerate(lines):
        if _is_reply_header(lines, index) or _SIGNATURE.match(line) or _MOBILE_FOOTER.match(line):
            break
        if line.lstrip().startswith(">"):
            continue
        kept.append(line)
    return "\n".join(kept).strip()


_PAGE_WORD = re.compile(r"\b(page|pg|p\.|seite|slide)\b", re.IGNORECASE)


def _furniture_key(text: str) -> str:
    normalised = " ".join(text.lower().split())
    # Page numbers vary from page to page and the line around them does not ("Page 3 of 9");
    # only such lines are compared with their digits masked, so numbered body text is never furniture.
    if len(normalised) <= 60 and (_PAGE_WORD.search(normalised) or len(normalised.split()) <= 3):
        return re.sub(r"\d+", "#", normalised)
    return normalised


def drop_page_furniture(blocks: Sequence[B], *, min_pages: int = 3, share: float = 0.6) -> list[B]:
    """Drop short blocks repeated on most pages (running headers/footers, "Page n of m").

    Blocks need ``text``, ``kind`` and ``page``; unstructured's own header/footer kinds always go.
    """
    pages_of: dict[str, set[int]] = {}
    pages: set[int] = set()
    for block in blocks:
        page = getattr(block, "page", None)
        if page is None:
            continue
        pages.add(page)
        if len(block.text) <= 120:
            pages_of.setdefault(_furniture_key(block.text), set()).add(page)
    repeated: set[str] = set()
    if len(pages) >= min_pages:
        threshold = max(2, share * len(pages))
        repeated = {key for key, on in pages_of.items() if len(on) >= threshold}
    return [
        b for b in blocks
        if b.kind not in {"header", "footer"} and not (b.page is not None and _furniture_key(b.text) in repeated)
    ]


def strip_html_chrome(html: str) -> str:
    """HTML with hidden text, navigation, headers, footers, cookie banners and scripts removed."""
    from bs4 import BeautifulSoup

    from ingest.hidden import drop_hidden_elements

    soup = BeautifulSoup(html, "html.parser")
    drop_hidden_elements(soup)  # before <style> goes: its class/id rules say what is hidden
    for tag in soup.find_all(_CHROME_TAGS):
        tag.decompose()
    doomed = []
    for tag in soup.find_all(True):
        if tag.name in {"html", "body", "main", "article"}:
            continue
        attrs = getattr(tag, "attrs", None) or {}
        words = " ".join([attrs.get("id") or "", " ".join(attrs.get("class") or []), attrs.get("role") or ""])
        if _CHROME_WORDS.search(words) or attrs.get("role") in {"navigation", "banner", "contentinfo"}:
            doomed.append(tag)
    for tag in doomed:
        if not tag.decomposed:
            tag.decompose()
    return str(soup)
