"""Partition files into structural blocks with unstructured (offline, ``fast`` strategies only)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.errors import InputError
from ingest.offline import prepare_unstructured


@dataclass(frozen=True)
class Block:
    """One structural element of a file: a title, paragraph, list item, table, …"""

    text: str
    kind: str  # title | text | list | table | header | footer | other
    page: int | None = None
    depth: int = 0


_KINDS = {
    "Title": "title",
    "NarrativeText": "text",
    "UncategorizedText": "text",
    "ListItem": "list",
    "Table": "table",
    "Header": "header",
    "Footer": "footer",
    "PageBreak": "pagebreak",
    "Address": "text",
    "EmailAddress": "text",
    "FigureCaption": "text",
    "Formula": "text",
    "CodeSnippet": "text",
}

FILE_EXTENSIONS = {
    ".md": "md",
    ".markdown": "md",
    ".txt": "text",
    ".text": "text",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
    ".docx": "docx",
    ".pptx": "pptx",
    ".eml": "email",
}


def _partitioner(kind: str):  # noqa: ANN202 - an unstructured partition_* function
    prepare_unstructured()
    if kind == "md":
        from unstructured.partition.md import partition_md

        return partition_md
    if kind == "text":
        from unstructured.partition.text import partition_text

        return partition_text
    if kind == "html":
        from unstructured.partition.html import partition_html

        return partition_html
    if kind == "pdf":
        from unstructured.partition.pdf import partition_pdf

        return lambda filename: partition_pdf(filename=filename, strategy="fast")
    if kind == "docx":
        from unstructured.partition.docx import partition_docx

        return partition_docx
    if kind == "pptx":
        from unstructured.partition.pptx import partition_pptx

        return partition_pptx
    if kind == "email":
        from unstructured.partition.email import partition_email

        return partition_email
    raise InputError(f"unsupported format {kind!r}")


def partition_file(path: Path) -> list[Block]:
    """Structural blocks of one file; raises InputError with the reason when it cannot be read."""
    kind = FILE_EXTENSIONS.get(path.suffix.lower())
    if kind is None:
        raise InputError(f"unsupported extension {path.suffix or '(none)'!r}")
    try:
        elements = _partitioner(kind)(filename=str(path))
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - parsers raise anything on corrupt input
        raise InputError(f"cannot parse {kind} file: {type(exc).__name__}: {exc}") from exc
    blocks = []
    for element in elements:
        text = (element.text or "").strip()
        block_kind = _KINDS.get(element.category, "other")
        if not text or block_kind == "pagebreak":
            continue
        meta = element.metadata
        blocks.append(
            Block(text=text, kind=block_kind, page=meta.page_number, depth=int(meta.category_depth or 0))
        )
    return blocks
