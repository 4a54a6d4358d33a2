"""Turn a manifest into source items: a document id, a fingerprint, and a way to load the document.

The fingerprint (raw bytes + everything the manifest derives for the item) is computed without
partitioning, so an unchanged item is skipped cheaply on re-runs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from dateutil import parser as dateparser

from core.access import acl_tokens_for_roles, parse_role_list
from core.errors import InputError
from core.models import Document, Section
from core.pathmatch import first_match
from ingest.clean import clean_text
from ingest.confined import OutsideSourceError, read_confined
from ingest.manifest import Manifest
from ingest.dates import document_date
from ingest.partition import FILE_EXTENSIONS, Block, partition_file
from ingest.rows import Row, rows_of

RECORD_EXTENSIONS = {".csv", ".json", ".jsonl", ".ndjson"}


@dataclass(frozen=True)
class SourceItem:
    """One document-to-be: ``load`` partitions/cleans it (may raise InputError)."""

    doc_id: str
    fingerprint: str
    label: str  # file path or "file:row N" for error reports
    load: Callable[[], Document]
    acl: tuple[str, ...] | None = None  # known before loading: an ACL change applies even if loading fails
    acl_defaulted: bool = False  # a record whose ACL field was empty, so acl.default applied
    acl_origin: str = ""  # which manifest rule or record field gave the ACL (shown in explanations)


@dataclass(frozen=True)
class SourceFailure:
    """An input that could not even be enumerated (bad row, unreadable file)."""

    label: str
    reason: str
    doc_id: str | None = None  # known for files (their chunks are kept); unknown for unreadable rows
    acl: tuple[str, ...] | None = None  # when known, a kept document still takes its new ACL
    outside: bool = False  # not part of the source (a link leaving it): indexed chunks are deleted
    acl_origin: str = ""


def _roles_for_file(manifest: Manifest, relpath: str) -> tuple[tuple[str, ...], str]:
    """The file's roles and where they came from (``acl.rules[1] 'finance/**'`` or ``acl.default``)."""
    index = first_match(relpath, [rule.match for rule in manifest.acl.rules])
    if index is None:
        return manifest.acl.default, _with_public(manifest, "acl.default")
    return manifest.acl.rules[index].roles, _with_public(manifest, f"acl.rules[{index}] {manifest.acl.rules[index].match!r}")


def _with_public(manifest: Manifest, origin: str) -> str:
    return f"{origin} + acl.public" if manifest.acl.public else origin


def _leaves_root(path: Path, root: Path) -> bool:
    """A symbolic link (or a link in its way) whose target is outside the source folder."""
    return not path.resolve().is_relative_to(root)


def _listed(root: Path, keep: Callable[[Path], bool]) -> list[Path]:
    # rglob does not descend into linked folders; linked files are checked by _leaves_root.
    return [root] if root.is_file() else sorted(p for p in root.rglob("*") if keep(p) and not p.is_dir())


def _fingerprint(*parts: bytes | str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part if isinstance(part, bytes) else part.encode("utf-8"))
        digest.update(b"\x1f")
    return digest.hexdigest()[:40]


def assemble_document(
    blocks: list[Block], *, doc_id: str, source: str, title: str, uri: str | None,
    acl: tuple[str, ...], updated_at: datetime | None, entity_mentions: tuple = (), fingerprint: str = "",
    updated_source: str | None = None,
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
        content_hash=fingerprint, updated_source=updated_source if updated_at else None,
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
    for path in _listed(root, lambda p: p.is_file() or p.is_symlink()):
        relpath = path.name if root.is_file() else path.relative_to(root).as_posix()
        if first_match(relpath, manifest.include) is None:
            continue
        if first_match(relpath, manifest.exclude) is not None or relpath.startswith("."):
            continue
        if root.is_dir() and _leaves_root(path, root):
            yield SourceFailure(relpath, "symbolic link to a file outside the source folder: not read",
                                f"{manifest.source}:{relpath}", outside=True)
            continue
        yield _file_item(manifest, path, relpath, max_bytes)


def _file_item(manifest: Manifest, path: Path, relpath: str, max_bytes: int) -> SourceItem | SourceFailure:
    doc_id = f"{manifest.source}:{relpath}"
    roles, origin = _roles_for_file(manifest, relpath)
    acl = acl_tokens_for_roles(roles, public=manifest.acl.public)
    if path.suffix.lower() not in FILE_EXTENSIONS:
        return SourceFailure(relpath, f"unsupported extension {path.suffix or '(none)'!r}", doc_id, acl, acl_origin=origin)
    try:
        read = read_confined(path, manifest.root, max_bytes=max_bytes)
    except OutsideSourceError as exc:
        return SourceFailure(relpath, str(exc), doc_id, outside=True)
    except InputError as exc:
        return SourceFailure(relpath, str(exc), doc_id, acl, acl_origin=origin)
    except OSError as exc:
        return SourceFailure(relpath, f"cannot read file: {exc.strerror or exc}", doc_id, acl, acl_origin=origin)
    raw = read.raw
    uri = manifest.uri_template.format(relpath=relpath) if manifest.uri_template else None
    mtime = datetime.fromtimestamp(read.mtime, tz=timezone.utc)
    fingerprint = _fingerprint(raw, "|".join(acl), uri or "", origin, "file-v3")

    def load() -> Document:
        # re-read (listing a big tree must not hold every file in memory), confined again: the file
        # may have been swapped since it was fingerprinted
        again = read_confined(path, manifest.root, max_bytes=max_bytes).raw
        blocks = partition_file(path, again)
        if not blocks:
            raise InputError("no text could be extracted (scanned or image-only? OCR is not enabled)")
        first_title = next((b.text for b in blocks if b.kind == "title"), None)
        title = clean_text(first_title or path.stem.replace("_", " ").replace("-", " "))
        updated, updated_source = document_date(path, again) or (mtime, "mtime")  # its own date first
        return assemble_document(
            blocks, doc_id=doc_id, source=manifest.source, title=title[:300], uri=uri, acl=acl,
            updated_at=updated, fingerprint=fingerprint, updated_source=updated_source,
        )

    return SourceItem(doc_id, fingerprint, relpath, load, acl, acl_origin=origin)


def read_rows(path: Path, root: Path | None = None) -> Iterator[Row]:
    """Rows of a CSV / JSON array / JSONL records file as (where, row, problem); with ``root``, the
    file is read only if what opens lies inside it (see ingest.confined)."""
    kind = {".csv": "csv", ".json": "json"}.get(path.suffix.lower(), "jsonl")
    try:
        raw = path.read_bytes() if root is None else read_confined(path, root, max_bytes=None).raw
    except InputError as exc:
        yield "", None, str(exc)
        return
    except OSError as exc:
        yield "", None, f"cannot read file: {exc.strerror or type(exc).__name__}"
        return
    yield from rows_of(kind, raw)


def _record_items(manifest: Manifest, path: Path) -> Iterator[SourceItem | SourceFailure]:
    files = _listed(path, lambda p: p.suffix.lower() in RECORD_EXTENSIONS)
    for file in files:
        name = file.name if path.is_file() else file.relative_to(path).as_posix()
        if file.suffix.lower() not in RECORD_EXTENSIONS:
            yield SourceFailure(name, f"unsupported records format {file.suffix or '(none)'!r}: "
                                      "use .csv, .json (array), .jsonl")
            continue
        if not path.is_file() and _leaves_root(file, path):
            yield SourceFailure(name, "symbolic link to a file outside the source folder: not read")
            continue
        for where, row, error in read_rows(file, path):
            label = f"{name}:{where}" if where else name
            if error:
                yield SourceFailure(label, error)
                continue
            try:
                yield _record_item(manifest, row, label)
            except InputError as exc:  # with its id known, the row's indexed version is kept, others synced
                closed = () if isinstance(exc, _BadAclField) else None  # an unreadable ACL fails closed
                yield SourceFailure(label, str(exc), _record_doc_id(manifest, row), closed)


def _field_values(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    return [v.strip() for v in str(value).split(";") if v.strip()]


class _BadAclField(InputError):
    """A record's ACL field cannot be read: the document it names becomes invisible until it is fixed."""


def _record_doc_id(manifest: Manifest, row: dict) -> str | None:
    native = row.get(manifest.id_field or "")
    if native is None or isinstance(native, (dict, list)) or str(native).strip() == "":
        return None
    return f"{manifest.source}:{str(native).strip()}"


def _record_item(manifest: Manifest, row: dict, label: str) -> SourceItem:
    doc_id = _record_doc_id(manifest, row)
    if doc_id is None:
        raise InputError(f"missing id field {manifest.id_field!r}")
    native = doc_id.split(":", 1)[1]
    title = str(row.get(manifest.title_field or "", "") or native).strip()
    text_parts = [str(row[f]).strip() for f in manifest.text_fields if row.get(f) not in (None, "")]
    roles: tuple[str, ...] = ()
    if manifest.acl.field:  # "sales;exec", "sales, exec" or a JSON list; empty → acl.default
        try:
            roles = parse_role_list(row.get(manifest.acl.field), where=f"field {manifest.acl.field!r}")
        except InputError as exc:
            raise _BadAclField(str(exc)) from exc
    defaulted = not roles
    acl = acl_tokens_for_roles(roles or manifest.acl.default, public=manifest.acl.public)
    origin = _with_public(manifest, "acl.default" if defaulted else f"field {manifest.acl.field!r}")
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
    derived = [title, text_parts, acl, uri, updated.isoformat() if updated else None, mentions, origin]
    fingerprint = _fingerprint(json.dumps(derived, default=str), "record-v3")

    def load() -> Document:
        if not text_parts:
            raise InputError(f"no text in fields {list(manifest.text_fields)}")
        blocks = [Block(title, "title")] + [Block(t, "text") for t in text_parts]
        return assemble_document(
            blocks, doc_id=doc_id, source=manifest.source, title=title[:300], uri=uri, acl=acl,
            updated_at=updated, entity_mentions=mentions, fingerprint=fingerprint, updated_source="record_field",
        )

    return SourceItem(doc_id, fingerprint, label, load, acl, acl_defaulted=defaulted and bool(manifest.acl.field),
                      acl_origin=origin)
