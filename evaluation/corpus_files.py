"""File writers for the generated corpus: PDF (matplotlib core fonts, wrapped lines, metadata dates),
DOCX (python-docx core properties), RFC 5322 e-mail, Markdown/HTML, CSV/JSONL records. The PDF and DOCX
drawing (``draw_pdf``, ``draw_docx``) also makes the committed fixtures (fixtures/make_documents.py).

Every file gets the same deliberately wrong mtime (``STALE_MTIME``) so an ingest that dates documents
by mtime instead of their own date is visible in the evaluation.
"""

from __future__ import annotations

import csv
import html
import json
import os
import textwrap
import zipfile
from dataclasses import dataclass
from datetime import datetime, timezone
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

STALE_MTIME = datetime(2025, 1, 1, tzinfo=timezone.utc).timestamp()

Page = list[tuple[str, str]]  # (heading, paragraph) per section


def _stale(path: Path) -> None:
    os.utime(path, (STALE_MTIME, STALE_MTIME))


def _prepare(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)


@dataclass(frozen=True)
class PdfLayout:
    """Type sizes (points) and vertical steps (page fractions) of a drawn PDF; body lines wrap at ``wrap``."""

    title_size: float = 13
    heading_size: float = 11
    body_size: float = 9.5
    heading_step: float = 0.028
    line_step: float = 0.02
    section_step: float = 0.018
    wrap: int = 92


def write_pdf(path: Path, title: str, pages: list[Page], created: datetime, header: str) -> None:
    """A corpus PDF (see ``draw_pdf``) with the stale mtime."""
    _prepare(path)
    draw_pdf(path, title, pages, created, header)
    _stale(path)


def draw_pdf(path: Path, title: str, pages: list[Page], created: datetime, header: str,
             layout: PdfLayout = PdfLayout()) -> None:
    """A text PDF in the PDF core fonts (Helvetica, not embedded: pdfminer extracts the text exactly):
    a running header on every page (unstructured's fast strategy drops a page's first line as one), the
    title on page 1, bold headings, wrapped body lines, "Page n of m"; dates pinned to ``created``."""
    import logging

    import matplotlib

    matplotlib.use("Agg")
    logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)  # "Helvetica: using medium" noise
    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_pdf import PdfPages

    with plt.rc_context({"pdf.use14corefonts": True, "font.family": "sans-serif"}):
        metadata = {"Title": title, "Author": "Northwind Systems", "CreationDate": created, "ModDate": created}
        with PdfPages(path, metadata=metadata) as pdf:
            for number, sections in enumerate(pages, start=1):
                fig = plt.figure(figsize=(8.27, 11.69))
                fig.text(0.08, 0.96, header, fontsize=8)
                y = 0.91
                if number == 1:
                    fig.text(0.08, y, title, fontsize=layout.title_size, weight="bold")
                    y -= 0.05
                for heading, paragraph in sections:
                    fig.text(0.08, y, heading, fontsize=layout.heading_size, weight="bold")
                    y -= layout.heading_step
                    for line in textwrap.wrap(paragraph, layout.wrap):
                        fig.text(0.08, y, line, fontsize=layout.body_size)
                        y -= layout.line_step
                    y -= layout.section_step
                fig.text(0.08, 0.04, f"Page {number} of {len(pages)}", fontsize=8)
                pdf.savefig(fig)
                plt.close(fig)


def write_docx(path: Path, title: str, sections: Page, created: datetime) -> None:
    """A corpus DOCX (see ``draw_docx``) with the stale mtime."""
    _prepare(path)
    draw_docx(path, title, sections, created)
    _stale(path)


def draw_docx(path: Path, title: str, sections: Page, created: datetime,
              zip_date: tuple[int, ...] = (2026, 1, 1, 0, 0, 0)) -> None:
    """A DOCX with a title, one heading per section, core-property dates ``created`` and zip entry dates
    ``zip_date`` (regenerating gives identical bytes)."""
    import docx

    document = docx.Document()
    document.core_properties.title = title
    document.core_properties.author = "Northwind Systems"
    document.core_properties.created = created.replace(tzinfo=None)
    document.core_properties.modified = created.replace(tzinfo=None)
    document.add_heading(title, level=1)
    for heading, paragraph in sections:
        document.add_heading(heading, level=2)
        document.add_paragraph(paragraph)
    document.save(path)
    pin_zip(path, zip_date)


def pin_zip(path: Path, date_time: tuple[int, ...] = (2026, 1, 1, 0, 0, 0)) -> None:
    """Fixed zip entry dates, so regenerating gives identical bytes."""
    with zipfile.ZipFile(path) as source:
        entries = [(info, source.read(info)) for info in source.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for info, data in entries:
            pinned = zipfile.ZipInfo(info.filename, date_time=date_time)
            pinned.compress_type = zipfile.ZIP_DEFLATED
            target.writestr(pinned, data)


def write_email(path: Path, *, sender: str, to: str, subject: str, sent: datetime, body: str,
                message_id: str) -> None:
    """A plain-text e-mail with a real ``Date:`` header."""
    _prepare(path)
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, to, subject
    message["Date"] = format_datetime(sent)
    message["Message-ID"] = f"<{message_id}@mail.northwind.example>"
    message.set_content(body)
    path.write_bytes(bytes(message))
    _stale(path)


def write_markdown(path: Path, title: str, sections: Page) -> None:
    _prepare(path)
    parts = [f"# {title}", ""]
    for heading, paragraph in sections:
        parts += [f"## {heading}", "", textwrap.fill(paragraph, 100), ""]
    path.write_text("\n".join(parts), encoding="utf-8")
    _stale(path)


def write_html(path: Path, title: str, sections: Page) -> None:
    _prepare(path)
    body = "".join(f"<h2>{html.escape(h)}</h2>\n<p>{html.escape(p)}</p>\n" for h, p in sections)
    path.write_text(
        f"<!doctype html>\n<html><head><title>{html.escape(title)}</title></head><body>\n"
        f"<nav><a href='/'>Wiki home</a> | <a href='/search'>Search</a></nav>\n<main><h1>{html.escape(title)}</h1>\n"
        f"{body}</main>\n<footer>Northwind Systems intranet</footer></body></html>\n", encoding="utf-8")
    _stale(path)


def write_csv(path: Path, rows: list[dict]) -> None:
    _prepare(path)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    _stale(path)


def write_jsonl(path: Path, rows: list[dict]) -> None:
    _prepare(path)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    _stale(path)
