"""Every file format lands with its text (and PDF page numbers); every bad input fails alone, with a reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.store.edge import EdgeStore
from ingest.ledger import Ledger
from ingest.manifest import load_manifest
from ingest.pipeline import IngestContext, ingest_manifests


def write_pdf(path: Path, pages: list[list[str]], *, password: str | None = None) -> None:
    """A real text PDF (TrueType fonts, so the text is extractable), optionally encrypted."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_pdf import PdfPages

    with matplotlib.rc_context({"pdf.fonttype": 42}), PdfPages(path) as pdf:
        for lines in pages:
            fig = plt.figure(figsize=(8.5, 11))
            for i, line in enumerate(lines):
                fig.text(0.1, 0.9 - i * 0.04, line, fontsize=11)
            pdf.savefig(fig)
            plt.close(fig)
    if password:
        from pypdf import PdfReader, PdfWriter

        writer = PdfWriter(clone_from=PdfReader(path))
        writer.encrypt(password)
        writer.write(path)


def write_docx(path: Path) -> None:
    import docx

    document = docx.Document()
    document.add_heading("Travel policy", level=1)
    document.add_paragraph("Economy class is booked for flights under six hours.")
    document.add_heading("Approvals", level=2)
    document.add_paragraph("Managers approve trips above 2,000 euros.", style="List Bullet")
    document.save(path)


def write_pptx(path: Path) -> None:
    from pptx import Presentation

    deck = Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[1])
    slide.shapes.title.text = "Q4 roadmap"
    slide.placeholders[1].text = "Launch the route optimiser in the EU region."
    deck.save(path)


EML = """From: Alice Smith <alice@acme.example>
To: Bob <bob@northwind.example>
Subject: Renewal terms for Acme
Date: Mon, 2 Nov 2026 10:00:00 +0000
Content-Type: text/plain; charset="utf-8"

Hi Bob,

We agreed to renew the Acme contract for 24 months at a 5% uplift.

Thanks,
Alice
-- 
Alice Smith | Account Executive

On Fri, Oct 30, 2026 at 9:00 AM Bob <bob@northwind.example> wrote:
> QUOTED-CANARY can you confirm the renewal terms?
"""

HTML = """<html><body><nav>NAV-CANARY Products Careers</nav>
<div class="cookie-consent">COOKIE-CANARY we use cookies</div>
<h1>Status page guide</h1><p>Post an update every 30 minutes during an incident.</p>
<table><tr><th>Severity</th><th>Update interval</th></tr><tr><td>SEV1</td><td>15 minutes</td></tr></table>
<footer>FOOTER-CANARY copyright</footer></body></html>"""


@pytest.fixture(scope="module")
def formats_index(tmp_path_factory, encoder):
    from core.config import Settings

    root = tmp_path_factory.mktemp("formats")
    docs = root / "docs"
    (docs / "data").mkdir(parents=True)
    (docs / "notes.md").write_text("# Onboarding\n\nNew hires get a laptop on day one.\n\n## Accounts\n\nSSO is set up by IT.\n")
    (docs / "readme.txt").write_text("Plain text about the parking garage opening hours.\n")
    (docs / "status.html").write_text(HTML)
    (docs / "renewal.eml").write_text(EML)
    write_pdf(docs / "review.pdf", [
        ["ACME Confidential", "Refunds are granted within 30 days.", "Page 1 of 3"],
        ["ACME Confidential", "Escalations go to the finance team.", "Page 2 of 3"],
        ["ACME Confidential", "Renewals are quoted sixty days early.", "Page 3 of 3"],
    ])
    write_docx(docs / "travel.docx")
    write_pptx(docs / "roadmap.pptx")
    (docs / "data" / "prices.csv").write_text("plan,price\nBasic,10 EUR\nPro,25 EUR\n")
    (docs / "data" / "regions.json").write_text(json.dumps([{"region": "eu-west", "launch": "2026-03"}]))
    # Bad inputs: each must fail alone, with its reason.
    (docs / "empty.md").write_text("")
    (docs / "broken.pdf").write_bytes(b"%PDF-1.7\nthis is not really a pdf\n")
    write_pdf(docs / "secret.pdf", [["Top secret"]], password="hunter2")
    (docs / "locked.docx").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600)
    (docs / "legacy.txt").write_bytes("Caf\xe9 menu: cr\xe8me br\xfbl\xe9e".encode("latin-1"))
    (docs / "archive.xyz").write_bytes(b"binary")
    (docs / "huge.txt").write_text("big " * 20_000)
    manifest = root / "docs.yaml"
    manifest.write_text("source: docs\nkind: files\npath: docs\nacl: {default: [staff]}\n")
    settings = Settings(data_dir=root / "data-dir", max_file_bytes=60_000)
    store = EdgeStore(settings.qdrant_path)
    ledger = Ledger(settings.ledger_path)
    report = ingest_manifests([load_manifest(manifest)], IngestContext(settings, encoder, store, ledger))
    yield report, store
    store.close()
    ledger.close()


def _text(store, doc_id):
    return "\n".join(h.payload["text"] for h in store.document_chunks(doc_id, acl_tokens=None))


def test_every_format_lands(formats_index):
    report, store = formats_index
    assert report.added == 9, report.errors
    assert "SSO is set up by IT." in _text(store, "docs:notes.md")
    assert "parking garage" in _text(store, "docs:readme.txt")
    assert "Economy class" in _text(store, "docs:travel.docx") and "2,000 euros" in _text(store, "docs:travel.docx")
    assert "route optimiser" in _text(store, "docs:roadmap.pptx")
    assert "Pro" in _text(store, "docs:data/prices.csv") and "eu-west" in _text(store, "docs:data/regions.json")


def test_pdf_text_comes_out_with_page_numbers_and_without_running_headers(formats_index):
    _, store = formats_index
    hits = store.document_chunks("docs:review.pdf", acl_tokens=None)
    text = "\n".join(h.payload["text"] for h in hits)
    assert "Refunds are granted within 30 days." in text and "Renewals are quoted sixty days early." in text
    assert sorted({p for h in hits for p in h.payload["pages"]}) == [1, 2, 3]
    assert "ACME Confidential" not in text and "Page 2 of 3" not in text


def test_email_keeps_the_new_message_only(formats_index):
    _, store = formats_index
    hits = store.document_chunks("docs:renewal.eml", acl_tokens=None)
    text = "\n".join(h.payload["text"] for h in hits)
    assert hits[0].payload["title"] == "Renewal terms for Acme"
    assert "24 months at a 5% uplift" in text
    assert "QUOTED-CANARY" not in text and "Account Executive" not in text


def test_html_chrome_is_gone_and_tables_keep_rows(formats_index):
    _, store = formats_index
    text = _text(store, "docs:status.html")
    assert "every 30 minutes" in text and "SEV1 | 15 minutes" in text
    assert not any(c in text for c in ("NAV-CANARY", "COOKIE-CANARY", "FOOTER-CANARY"))


def test_bad_inputs_fail_one_by_one_with_reasons(formats_index):
    report, _ = formats_index
    reasons = {e.item: e.reason for e in report.errors}
    assert report.failed == len(reasons) == 7, reasons
    assert reasons["empty.md"] == "empty file"
    assert "password-protected PDF" in reasons["secret.pdf"]
    assert "PDF" in reasons["broken.pdf"]
    assert "password-protected" in reasons["locked.docx"]
    assert "not UTF-8" in reasons["legacy.txt"] and "offset 3" in reasons["legacy.txt"]
    assert "unsupported extension '.xyz'" in reasons["archive.xyz"]
    assert "too large" in reasons["huge.txt"]
    assert report.exit_code == 1
