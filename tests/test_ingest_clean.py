"""Cleaning: what a reader would call noise never reaches the index."""

from __future__ import annotations

from ingest.boilerplate import drop_page_furniture, strip_email_noise, strip_html_chrome
from ingest.chunk import content_hash
from ingest.clean import clean_text
from ingest.partition import Block


def test_unicode_and_whitespace_are_normalised():
    raw = "Ｒｅｆｕｎｄ\u00a0policy\t\tﬁnal\r\n\r\n\r\n\r\nline\x07 two   words "
    assert clean_text(raw) == "Refund policy final\n\nline two words"


def test_lines_repeated_on_most_pages_are_dropped_but_content_is_kept():
    blocks = []
    for page in range(1, 5):
        blocks += [Block("ACME Confidential", "title", page), Block(f"Body text of section {page} is unique.", "text", page),
                   Block(f"Page {page} of 4", "text", page)]
    kept = [b.text for b in drop_page_furniture(blocks)]
    assert kept == [f"Body text of section {p} is unique." for p in range(1, 5)]


def test_a_short_document_keeps_its_lines():
    blocks = [Block("Title", "title", 1), Block("Text", "text", 1), Block("Title", "title", 2)]
    assert len(drop_page_furniture(blocks)) == 3  # two pages are too few to call anything furniture


def test_quoted_replies_and_signatures_are_removed():
    body = (
        "Hi Bob,\n\nWe agreed to renew for 24 months.\n\nThanks,\nAlice\n-- \nAlice Smith | ACME\n+1 555 0100\n\n"
        "On Fri, Oct 30, 2026 at 9:00 AM Bob <bob@example.com> wrote:\n> Can you confirm?\n"
    )
    assert strip_email_noise(body) == "Hi Bob,\n\nWe agreed to renew for 24 months.\n\nThanks,\nAlice"


def test_outlook_style_chains_and_inline_quotes_are_removed():
    body = ("Approved.\n> quoted line in the middle\nShip it.\n\n-----Original Message-----\n"
            "From: Carol\nSent: Monday\nSubject: old\n\nOld text.")
    assert strip_email_noise(body) == "Approved.\nShip it."
    header_chain = "Yes.\n\nFrom: Carol <c@x.com>\nSent: Monday, 2 Nov 2026\nTo: Dan\n\nEarlier message."
    assert strip_email_noise(header_chain) == "Yes."
    assert strip_email_noise("From: here on, prices rise.") == "From: here on, prices rise."  # not a header


def test_html_navigation_headers_footers_and_cookie_banners_are_removed():
    html = (
        "<html><body><header>Home | Docs</header><nav><a>Products</a><a>Careers</a></nav>"
        "<div class='cookie-banner'>We use cookies. Accept all.</div><div id='sidebar'>Related links</div>"
        "<div class='content'><h1>Refund policy</h1><p>Refunds within 30 days.</p></div>"
        "<footer>Copyright 2026</footer><script>track()</script></body></html>"
    )
    cleaned = strip_html_chrome(html)
    for noise in ("Home | Docs", "Products", "cookies", "Related links", "Copyright", "track()"):
        assert noise not in cleaned
    assert "Refund policy" in cleaned and "Refunds within 30 days." in cleaned


def test_content_hash_ignores_case_spacing_and_unicode_width():
    email = "Renewal agreed for 24 months at a 5% uplift."
    quoted_in_ticket = "renewal  agreed for 24\nmonths at a ５% uplift. "
    assert content_hash(email) == content_hash(quoted_in_ticket)
    assert content_hash(email) != content_hash("Renewal agreed for 12 months at a 5% uplift.")
