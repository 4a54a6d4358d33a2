"""Partition files into structural blocks: unstructured (offline, ``fast`` strategies only) plus small
readers where a dedicated parse is clearly better.

- PDF: unstructured ``fast`` (pdfminer underneath) keeps page numbers and titles; encrypted files are
  detected first with pypdf, because unstructured returns zero elements for them without a reason.
- EML: the stdlib ``email`` parser, because unstructured joins the body's lines into paragraphs, which
  destroys the line structure (``>`` quotes, ``On … wrote:``, ``-- ``) reply-chain removal needs.
- HTML: site chrome (nav, header, footer, cookie banners) is removed before unstructured sees it.
- CSV / JSON / JSONL inside a file tree: one block per row / object, ``key: value`` lines.
"""

from __future__ import annotations

import io

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from core.errors import InputError
from ingest.boilerplate import drop_page_furniture, strip_email_noise, strip_html_chrome
from ingest.offline import prepare_unstructured
from ingest.rows import csv_rows, jsonl_rows


@dataclass(frozen=True)
class Block:
    """One structural element of a file: a title, paragraph, list item, table, …"""

    text: str
    kind: str  # title | text | list | table | header | footer | other
    page: int | None = None
    depth: int = 0


_KINDS = {
    "Title": "title", "NarrativeText": "text", "UncategorizedText": "text", "ListItem": "list",
    "Table": "table", "Header": "header", "Footer": "footer", "PageBreak": "pagebreak", "Address": "text",
    "EmailAddress": "text", "FigureCaption": "text", "Formula": "text", "CodeSnippet": "text",
}

FILE_EXTENSIONS = {
    ".md": "md", ".markdown": "md", ".txt": "text", ".text": "text", ".html": "html", ".htm": "html",
    ".pdf": "pdf", ".docx": "docx", ".pptx": "pptx", ".eml": "email",
    ".csv": "csv", ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl",
}

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # encrypted OOXML (and legacy .doc/.ppt) containers


def decode_text(raw: bytes) -> str:
    """UTF-8 (with or without BOM) or BOM-marked UTF-16; anything else is rejected with the offset."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16")
    if b"\x00" in raw[:4096]:
        raise InputError("binary content in a text file")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}); re-save the file as UTF-8"
        ) from exc


def _elements_to_blocks(elements: list) -> list[Block]:
    blocks = []
    for element in elements:
        kind = _KINDS.get(element.category, "other")
        text = (element.text or "").strip()
        if kind == "table" and getattr(element.metadata, "text_as_html", None):
            text = _table_rows(element.metadata.text_as_html) or text
        if not text or kind == "pagebreak":
            continue
        meta = element.metadata
        blocks.append(Block(text=text, kind=kind, page=meta.page_number, depth=int(meta.category_depth or 0)))
    return blocks


def _table_rows(html: str) -> str:
    """One line per table row, cells joined by `` | ``, so chunks split tables only between rows."""
    from bs4 import BeautifulSoup

    rows = []
    for tr in BeautifulSoup(html, "html.parser").find_all("tr"):
        cells = [" ".join(cell.get_text(" ").split()) for cell in tr.find_all(["td", "th"])]
        if any(cells):
            rows.append(" | ".join(cells))
    return "\n".join(rows)


def _check_pdf(raw: bytes) -> None:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    # pypdf logs what it then raises ("EOF marker not found"); the job report already carries the reason.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = PdfReader(io.BytesIO(raw))
        if reader.is_encrypted and not reader.decrypt(""):
            raise InputError("password-protected PDF")
    except (PdfReadError, ValueError, KeyError, OSError) as exc:
        raise InputError(f"corrupt PDF: {exc}") from exc


def _partition_unstructured(kind: str, raw: bytes) -> list[Block]:
    # parsers get the bytes already read (and confined to the source folder), never the path again
    prepare_unstructured()
    if kind == "md":
        from unstructured.partition.md import partition_md

        return _elements_to_blocks(partition_md(text=decode_text(raw)))
    if kind == "text":
        from unstructured.partition.text import partition_text

        return _elements_to_blocks(partition_text(text=decode_text(raw)))
    if kind == "html":
        from bs4 import UnicodeDammit
        from unstructured.partition.html import partition_html

        html = UnicodeDammit(raw, ["utf-8"]).unicode_markup or decode_text(raw)
        return _elements_to_blocks(partition_html(text=strip_html_chrome(html)))
    if kind == "pdf":
        _check_pdf(raw)
        from unstructured.partition.pdf import partition_pdf

        from ingest.reflow import reflow_lines  # here: reflow imports Block from this module

        return reflow_lines(drop_page_furniture(_elements_to_blocks(partition_pdf(file=io.BytesIO(raw), strategy="fast",
                                                                    languages=["eng"]))))
    if raw.startswith(_OLE_MAGIC):
        raise InputError(f"password-protected or legacy (pre-2007) {kind.upper()} file")
    if kind == "docx":
        from unstructured.partition.docx import partition_docx

        return drop_page_furniture(_elements_to_blocks(partition_docx(file=io.BytesIO(raw))))
    from unstructured.partition.pptx import partition_pptx

    return _elements_to_blocks(partition_pptx(file=io.BytesIO(raw)))


def _partition_email(raw: bytes) -> list[Block]:
    from email import policy
    from email.parser import BytesParser

    message = BytesParser(policy=policy.default).parsebytes(raw)
    if not message.keys():
        raise InputError("not an email message (no headers)")
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        raise InputError("email has no text body")
    body = part.get_content()
    if part.get_content_type() == "text/html":
        from bs4 import BeautifulSoup

        body = BeautifulSoup(strip_html_chrome(body), "html.parser").get_text("\n")
    blocks = [Block(str(message["subject"]), "title")] if message["subject"] else []
    people = [f"{h}: {message[h]}" for h in ("From", "To", "Cc") if message[h]]
    if people:
        blocks.append(Block("\n".join(people), "other"))
    paragraphs = [p.strip() for p in strip_email_noise(body).split("\n\n")]
    return blocks + [Block(p, "text", depth=1) for p in paragraphs if p]


def _row_text(row: object) -> str:
    if isinstance(row, dict):
        return "\n".join(f"{k}: {json.dumps(v, ensure_ascii=False) if isinstance(v, (dict, list)) else v}"
                         for k, v in row.items() if v not in (None, ""))
    return json.dumps(row, ensure_ascii=False)


def _partition_data(kind: str, raw: bytes) -> list[Block]:
    text = decode_text(raw)
    if kind == "json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"line {exc.lineno}: invalid JSON ({exc.msg} at column {exc.colno})") from exc
        rows = data if isinstance(data, list) else [data]
    else:  # the file is one document: a bad row fails it whole, naming the line (ingest.rows)
        rows = []
        for where, row, problem in (csv_rows(text) if kind == "csv" else jsonl_rows(text)):
            if problem and (where.startswith("line") or problem.startswith("invalid JSON")):
                raise InputError(f"{where.replace('row', 'line')}: {problem}")
            rows += [row] if row is not None else []
    return [Block(_row_text(row), "text") for row in rows if _row_text(row).strip()]


def partition_file(path: Path, raw: bytes | None = None) -> list[Block]:
    """Structural blocks of one file; raises InputError with the reason when it cannot be read."""
    kind = FILE_EXTENSIONS.get(path.suffix.lower())
    if kind is None:
        raise InputError(f"unsupported extension {path.suffix or '(none)'!r}")
    raw = path.read_bytes() if raw is None else raw
    if not raw.strip():
        raise InputError("empty file")
    try:
        if kind == "email":
            return _partition_email(raw)
        if kind in {"csv", "json", "jsonl"}:
            return _partition_data(kind, raw)
        return _partition_unstructured(kind, raw)
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - parsers raise anything on corrupt input
        raise InputError(f"cannot parse {kind} file: {type(exc).__name__}: {exc}") from exc
