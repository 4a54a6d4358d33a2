"""Turn a manifest into source items: a document id, a fingerprint, and a way to load the document.

The fingerprint (raw bytes + everything the manifest derives for the item) is computed without
partitioning, so an unchanged item is skipped cheaply on re-runs.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from fnmatch import fnmatch
from pathlib import Path, PurePosixPath

from dateutil import parser as dateparser

from core.access import acl_tokens_for_roles
from core.errors import InputError
from core.models import Document, Section
from ingest.clean import clean_text
from ingest.manifest import Manifest
from ingest.partition import FILE_EXTENSIONS, Block, partition_file

RECORD_EXTENSIONS = {".csv", ".json", ".jsonl", ".ndjson"}


@dataclass(frozen=True)
class SourceItem:
    """One document-to-be: ``load`` partitions/cleans it (may raise InputError)."""

    doc_id: str
    fingerprint: str
    label: str  # file path or "file:row N" for error reports
    load: Callable[[], Document]
    acl: tuple[str, ...] | None = None  # known before loading: an ACL change applies even if loading fails


@dataclass(frozen=True)
class SourceFailure:
    """An input that could not even be enumerated (bad row, unreadable file)."""

    label: str
    reason: str
    doc_id: str | None = None  # known for files (their chunks are kept); unknown for unreadable rows
    acl: tuple[str, ...] | None = None  # when known, a kept document still takes its new ACL


def _glob_match(relpath: str, pattern: str) -> bool:
    if PurePosixPath(relpath).match(pattern) or fnmatch(relpath, pattern):
        return True
    return pattern.startswith("**/") and fnmatch(relpath, pattern[3:])


def _roles_for_file(manifest: Manifest, relpath: str) -> tuple[str, ...]:
    for rule in manifest.acl.rules:
        if _glob_match(relpath, rule.match):
            return rule.roles
    return manifest.acl.default


def _fingerprint(*parts: bytes | str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part if isinstance(part, bytes) else part.encode("utf-8"))
        digest.update(b"\x1f")
    return digest.hexdigest()[:40]


def assemble_document(
    blocks: list[Block], *, doc_id: str, source: str, title: str, uri: str | None,
    acl: tuple[str, ...], updated_at: datetime | None, entity_mentions: tuple = (), fingerprint: str = "",
) -> Document:
    """Join cleaned blocks into document text with one Section per block (offsets, page, path)."""
    parts: list[str] = []
    sections: list[Section] = []
    titles: list[tuple[int, str]] = []
    cursor = 0
    for block in blocks:
        text = clean_text(block.text)
        if not text:
            continue
        if block.kind == "title":
            titles = [(d, t) for d, t in titles if d < block.depth] + [(block.depth, text)]
        path = tuple(t for _, t in titles)
        if parts:
            cursor += 2
        sections.append(Section(cursor, cursor + len(text), block.kind, block.page, path))
        parts.append(text)
        cursor += len(text)
    body = "\n\n".join(parts)
    return Document(
        doc_id=doc_id, source=source, title=title, text=body, uri=uri, acl=acl,
        updated_at=updated_at, sections=tuple(sections), entity_mentions=entity_mentions,
        content_hash=fingerprint,
    )


def iter_source_items(
    manifest: Manifest, *, max_file_bytes: int = 50 * 1024 * 1024
) -> Iterator[SourceItem | SourceFailure]:
    """Every document the manifest describes, in a stable order."""
    if manifest.kind == "files":
        yield from _file_items(manifest, max_file_bytes)
    else:
        yield from _record_items(manifest, manifest.root)


def _file_items(manifest: Manifest, max_bytes: int) -> Iterator[SourceItem | SourceFailure]:
    root = manifest.root
    paths = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    for path in paths:
        relpath = path.name if root.is_file() else path.relative_to(root).as_posix()
        if not any(_glob_match(relpath, g) for g in manifest.include):
            continue
        if any(_glob_match(relpath, g) for g in manifest.exclude) or relpath.startswith("."):
            continue
        yield _file_item(manifest, path, relpath, max_bytes)


def _file_item(manifest: Manifest, path: Path, relpath: str, max_bytes: int) -> SourceItem | SourceFailure:
    doc_id = f"{manifest.source}:{relpath}"
    acl = acl_tokens_for_roles(_roles_for_file(manifest, relpath), public=manifest.acl.public)
    if path.suffix.lower() not in FILE_EXTENSIONS:
        return SourceFailure(relpath, f"unsupported extension {path.suffix or '(none)'!r}", doc_id, acl)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            return SourceFailure(relpath, f"file too large ({size:,} bytes > max_file_bytes {max_bytes:,})", doc_id, acl)
        raw = path.read_bytes()
    except OSError as exc:
        return SourceFailure(relpath, f"cannot read file: {exc.strerror or exc}", doc_id, acl)
    uri = manifest.uri_template.format(relpath=relpath) if manifest.uri_template else None
    updated = datetime.fromtimestamp(path.stat().st_mtime, tz=timezone.utc)
    fingerprint = _fingerprint(raw, "|".join(acl), uri or "", "file-v2")

    def load() -> Document:
        blocks = partition_file(path)  # re-read: listing a big tree must not hold every file in memory
        if not blocks:
            raise InputError("no text could be extracted (scanned or image-only? OCR is not enabled)")
        first_title = next((b.text for b in blocks if b.kind == "title"), None)
        title = clean_text(first_title or path.stem.replace("_", " ").replace("-", " "))
        return assemble_document(
            blocks, doc_id=doc_id, source=manifest.source, title=title[:300], uri=uri, acl=acl,
            updated_at=updated, fingerprint=fingerprint,
        )

    return SourceItem(doc_id, fingerprint, relpath, load, acl)


def read_rows(path: Path) -> Iterator[tuple[int, dict | None, str | None]]:
    """Rows of a CSV / JSON array / JSONL file as (row number, row, error)."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            with path.open(newline="", encoding="utf-8-sig") as handle:
                reader = csv.DictReader(handle)
                for row in reader:
                    number = reader.line_num  # the row's (last) line in the file, as an editor shows it
                    if None in row:
                        yield number, None, "more values than header columns"
                    else:
                        yield number, row, None
        elif suffix == ".json":
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, list):
                yield 0, None, "a JSON records file holds an array of objects"
                return
            for number, row in enumerate(data, start=1):
                yield (number, row, None) if isinstance(row, dict) else (number, None, "not an object")
        else:
            with path.open(encoding="utf-8") as handle:
                for number, line in enumerate(handle, start=1):
                    if not line.strip():
                        continue
                    try:
                        row = json.loads(line)
                    except json.JSONDecodeError as exc:
                        yield number, None, f"invalid JSON: {exc.msg}"
                        continue
                    yield (number, row, None) if isinstance(row, dict) else (number, None, "not an object")
    except UnicodeDecodeError as exc:
        yield 0, None, f"not UTF-8 text ({exc.reason} at byte {exc.start}); later rows were not read"
    except csv.Error as exc:
        yield 0, None, f"malformed CSV: {exc}; later rows were not read"
    except json.JSONDecodeError as exc:
        yield 0, None, f"invalid JSON: {exc.msg} (line {exc.lineno})"


def _record_items(manifest: Manifest, path: Path) -> Iterator[SourceItem | SourceFailure]:
    files = [path] if path.is_file() else sorted(
        p for p in path.rglob("*") if p.suffix.lower() in RECORD_EXTENSIONS
    )
    for file in files:
        if file.suffix.lower() not in RECORD_EXTENSIONS:
            yield SourceFailure(file.name, f"unsupported records format {file.suffix or '(none)'!r}: "
                                           "use .csv, .json (array), .jsonl")
            continue
        for number, row, error in read_rows(file):
            label = f"{file.name}:row {number}"
            if error:
                yield SourceFailure(label, error)
                continue
            try:
                yield _record_item(manifest, row, label)
            except InputError as exc:
                yield SourceFailure(label, str(exc))


def _field_values(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    return [v.strip() for v in str(value).split(";") if v.strip()]


def _record_item(manifest: Manifest, row: dict, label: str) -> SourceItem:
    native = row.get(manifest.id_field or "")
    if native is None or str(native).strip() == "":
        raise InputError(f"missing id field {manifest.id_field!r}")
    native = str(native).strip()
    title = str(row.get(manifest.title_field or "", "") or native).strip()
    text_parts = [str(row[f]).strip() for f in manifest.text_fields if row.get(f) not in (None, "")]
    roles = list(manifest.acl.default)
    if manifest.acl.field and row.get(manifest.acl.field) not in (None, ""):
        roles = _field_values(row[manifest.acl.field])
    acl = acl_tokens_for_roles(roles, public=manifest.acl.public)
    updated = None
    if manifest.updated_field and row.get(manifest.updated_field):
        try:
            updated = dateparser.parse(str(row[manifest.updated_field]))
        except (ValueError, OverflowError, TypeError) as exc:
            raise InputError(f"field {manifest.updated_field!r}: bad date {row[manifest.updated_field]!r}") from exc
    mentions = tuple(
        (etype, name) for etype, fields in manifest.entity_fields.items()
        for f in fields for name in _field_values(row.get(f))
    )
    uri = None
    if manifest.uri_template:
        try:
            uri = manifest.uri_template.format(**{k: v for k, v in row.items() if isinstance(k, str)})
        except (KeyError, IndexError, ValueError) as exc:
            raise InputError(f"uri_template needs field {exc}") from exc
    doc_id = f"{manifest.source}:{native}"
    derived = [title, text_parts, acl, uri, updated.isoformat() if updated else None, mentions]
    fingerprint = _fingerprint(json.dumps(derived, default=str), "record-v2")

    def load() -> Document:
        if not text_parts:
            raise InputError(f"no text in fields {list(manifest.text_fields)}")
        blocks = [Block(title, "title")] + [Block(t, "text") for t in text_parts]
        return assemble_document(
            blocks, doc_id=doc_id, source=manifest.source, title=title[:300], uri=uri, acl=acl,
            updated_at=updated, entity_mentions=mentions, fingerprint=fingerprint,
        )

    return SourceItem(doc_id, fingerprint, label, load, acl)
