"""Reading the audit trail back: ``verify_trail`` (the first broken record, if any) and
``export_records`` (JSON lines or CSV, by time range and principal) for compliance reviews."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from core.errors import InputError
from governance.audit import GENESIS, chain_files, read_head, record_hash


@dataclass(frozen=True)
class BrokenRecord:
    """Where the chain first fails, and why."""

    file: str
    line: int
    seq: int | None
    reason: str


@dataclass(frozen=True)
class Verification:
    """What ``stitch audit verify`` reports."""

    records: int
    files: int
    last_hash: str
    broken: BrokenRecord | None

    @property
    def ok(self) -> bool:
        return self.broken is None

    def to_dict(self) -> dict:
        broken = self.broken.__dict__ if self.broken else None
        return {"ok": self.ok, "records": self.records, "files": self.files, "last_hash": self.last_hash, "broken": broken}


def _records(path: Path) -> Iterator[tuple[Path, int, str]]:
    for file in chain_files(path):
        with file.open(encoding="utf-8", errors="replace") as handle:
            for number, line in enumerate(handle, start=1):
                yield file, number, line


def _problem(rec: object, seq: int, prev: str) -> str | None:
    """Why this record does not continue the chain at (seq, prev), or None."""
    if not isinstance(rec, dict) or "hash" not in rec:
        return "not a chained audit record"
    if record_hash(rec) != rec["hash"]:
        return "its hash does not match its content (the record was edited)"
    if rec.get("seq") != seq:
        got = rec.get("seq")
        if isinstance(got, int) and got > seq:
            return f"records {seq}..{got - 1} are missing (deleted, or a rotated file removed)"
        return f"seq {got} where {seq} was expected (records reordered or duplicated)"
    if rec.get("prev") != prev:
        return "its prev does not match the previous record's hash (a record before it was removed or replaced)"
    return None


def verify_trail(path: Path) -> Verification:
    """Check every record's hash, seq and link, across rotated files, then the head (a cut tail)."""
    seq, prev, files = 0, GENESIS, len(chain_files(path))
    for file, number, line in _records(path):
        try:
            rec = json.loads(line)
        except ValueError:
            rec = None
        reason = _problem(rec, seq + 1, prev)
        if reason:
            got = rec.get("seq") if isinstance(rec, dict) and isinstance(rec.get("seq"), int) else None
            return Verification(seq, files, prev, BrokenRecord(file.name, number, got, reason))
        seq, prev = rec["seq"], rec["hash"]
    head = read_head(path)
    if head is not None and (head[0] > seq or (head[0] == seq and head[1] != prev)):
        reason = f"the trail ends at seq {seq} but the head file says {head[0]}: records were cut from the end"
        return Verification(seq, files, prev, BrokenRecord(path.name, 0, seq + 1, reason))
    if head is None and seq:
        return Verification(seq, files, prev, BrokenRecord(path.name, 0, None, "the head file is missing"))
    return Verification(seq, files, prev, None)


def parse_time(value: str | None, *, where: str) -> datetime | None:
    """An ISO date or datetime (UTC when no zone is given), or None."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InputError(f"{where}: {value!r} is not an ISO date or datetime (e.g. 2026-12-01T09:00)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def select_records(
    path: Path, *, since: datetime | None = None, until: datetime | None = None, principal: str | None = None
) -> Iterator[dict]:
    """Records in chain order with ``since <= time < until`` and, if given, this principal id."""
    for _, _, line in _records(path):
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        moment = parse_time(rec.get("time"), where="audit record") if isinstance(rec.get("time"), str) else None
        if since and (moment is None or moment < since):
            continue
        if until and (moment is None or moment >= until):
            continue
        if principal is not None and rec.get("principal_id") != principal:
            continue
        yield rec


CSV_COLUMNS = (
    "seq", "time", "event", "request_id", "key_id", "principal_id", "roles", "method", "route", "status",
    "doc_ids", "chunk_ids", "content_hashes", "requested_doc_id", "entity_ids", "action", "job_id", "sources",
    "paths", "query_hash", "latency_ms", "prev", "hash", "other",
)


def export_records(records: Iterator[dict], *, fmt: str) -> Iterator[str]:
    """Records as JSON lines, or as CSV (lists as JSON arrays; fields without a column in ``other``)."""
    if fmt == "jsonl":
        for rec in records:
            yield json.dumps(rec, separators=(",", ":")) + "\n"
        return
    if fmt != "csv":
        raise InputError(f"--format: {fmt!r} is not one of jsonl, csv")
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for rec in records:
        other = {k: v for k, v in rec.items() if k not in CSV_COLUMNS}
        row = [*(_cell(rec.get(c)) for c in CSV_COLUMNS[:-1]), json.dumps(other) if other else ""]
        writer.writerow(row)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)
