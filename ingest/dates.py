"""A document's own date, read from the file: the e-mail ``Date:`` header, PDF ``ModDate``/``CreationDate``,
Office ``docProps/core.xml`` modified/created. ``None`` when the format carries no date (or an unreadable
one); the caller then falls back to the file's mtime and says so (payload ``updated_source``).

The mtime says when a file was copied or exported, not when the document was written, so an
``updated_after`` filter over mtimes means nothing for an exported mailbox or contract archive.
"""

from __future__ import annotations

import io
import zipfile
from datetime import datetime, timezone
from pathlib import Path
from xml.etree import ElementTree

_EARLIEST = datetime(1980, 1, 2, tzinfo=timezone.utc)  # zip's epoch; anything before is a placeholder
_DCTERMS = "{http://purl.org/dc/terms/}"


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    value = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    value = value.astimezone(timezone.utc)
    return value if value >= _EARLIEST else None


def _email_date(raw: bytes) -> datetime | None:
    from email import policy
    from email.parser import BytesParser

    message = BytesParser(policy=policy.default).parse(io.BytesIO(raw), headersonly=True)
    header = message["Date"]
    return getattr(header, "datetime", None) if header is not None else None


def _pdf_date(raw: bytes) -> datetime | None:
    from pypdf import PdfReader

    info = PdfReader(io.BytesIO(raw)).metadata
    if info is None:
        return None
    return info.modification_date or info.creation_date


def _office_date(raw: bytes) -> datetime | None:
    with zipfile.ZipFile(io.BytesIO(raw)) as archive:
        if "docProps/core.xml" not in archive.namelist():
            return None
        root = ElementTree.fromstring(archive.read("docProps/core.xml"))
    for tag in ("modified", "created"):
        node = root.find(f"{_DCTERMS}{tag}")
        if node is not None and node.text and node.text.strip():
            return datetime.fromisoformat(node.text.strip().replace("Z", "+00:00"))
    return None


_READERS = {".eml": (_email_date, "email_header"), ".pdf": (_pdf_date, "pdf_metadata"),
            ".docx": (_office_date, "office_metadata"), ".pptx": (_office_date, "office_metadata")}


def document_date(path: Path, raw: bytes | None = None) -> tuple[datetime, str] | None:
    """(UTC date, where it came from) for formats that carry their own date, else ``None``.

    ``raw`` is the file's bytes when the caller has read them already (confined to the source folder)."""
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        return None
    read, source = reader
    try:
        value = _utc(read(path.read_bytes() if raw is None else raw))
    except Exception:  # noqa: BLE001 - a malformed date or container must not fail the document
        return None
    return (value, source) if value else None
