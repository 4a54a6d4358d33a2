"""PDF line wraps are reflowed into paragraphs (not paragraph breaks mid-sentence); pages stay right."""

from __future__ import annotations

from datetime import datetime, timezone

from evaluation.corpus_files import write_pdf
from ingest.partition import Block, partition_file
from ingest.reflow import reflow_lines

PARTIES = ("This Master Services Agreement is made on 1 January 2024 between Northwind Systems B.V., "
           "Rotterdam, and Acme Holdings (Deutschland) GmbH, Hamburg (the Customer), for the Route "
           "Planner service described in the order form.")
RENEWAL = ("The Agreement renews automatically on 1 January 2027 for successive periods of twelve months "
           "unless either party gives written notice of non-renewal at least 90 days before that date, "
           "in which case it ends on 31 December 2026.")


def test_wrapped_pdf_lines_become_one_paragraph_with_the_right_page(tmp_path):
    path = tmp_path / "msa.pdf"
    write_pdf(path, "Master Services Agreement", [[("Parties", PARTIES)], [("Term and renewal", RENEWAL)]],
              datetime(2024, 1, 1, tzinfo=timezone.utc), "Northwind Systems B.V. - MSA")
    blocks = partition_file(path)
    texts = {b.text: b for b in blocks}
    assert PARTIES in texts, [b.text for b in blocks]
    assert RENEWAL in texts
    assert texts[PARTIES].page == 1 and texts[RENEWAL].page == 2
    assert texts[PARTIES].kind == texts[RENEWAL].kind == "text"
    headings = [b.text for b in blocks if b.kind == "title"]
    assert "Parties" in headings and "Term and renewal" in headings
    assert all(len(h.split()) <= 8 for h in headings)  # no wrapped line taken for a heading


def test_reflow_keeps_headings_pages_and_finished_sentences_apart():
    blocks = [Block("Fees", "title", 1), Block("Annual fees are 10 EUR per", "text", 1),
              Block("seat and month.", "text", 1), Block("Governing law", "text", 1),
              Block("This Agreement is governed by Dutch law and the", "text", 1),
              Block("courts of Rotterdam.", "text", 2), Block("Route-", "text", 2), Block("planner works.", "text", 2)]
    out = [(b.text, b.kind, b.page) for b in reflow_lines(blocks)]
    assert out == [("Fees", "title", 1), ("Annual fees are 10 EUR per seat and month.", "text", 1),
                   ("Governing law", "text", 1), ("This Agreement is governed by Dutch law and the", "text", 1),
                   ("courts of Rotterdam.", "text", 2), ("Route-planner works.", "text", 2)]
