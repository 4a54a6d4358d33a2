"""The audit trail: hash-chained JSON lines that make deletion, reordering and editing detectable.

Every record carries ``seq`` (1, 2, …), ``prev`` (the previous record's hash; ``GENESIS`` for the
first) and ``hash`` = sha256 of its canonical JSON without ``hash``. A head file beside the log
holds the last seq and hash, so cutting the tail is caught too. The current file rotates into
``audit.<first seq>.jsonl`` past ``rotate_bytes``; the chain runs on across files.

Several processes append to one chain (``stitch serve`` and steward CLI commands): each batch is
appended under an OS file lock, reading the head first. Requests never wait for the disk: the
server enqueues records and a writer thread appends them (``AuditTrail.record``); short-lived
commands append synchronously (``audit_event``). Records never hold query text or document text.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import threading
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path

from filelock import FileLock

from core.config import Settings
from governance.batches import LINGER, BatchWriter

GENESIS = "0" * 64


def canonical(record: dict) -> bytes:
    """The bytes a record's hash covers: sorted keys, no whitespace, without the hash itself."""
    body = {k: v for k, v in record.items() if k != "hash"}
    return json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")


def record_hash(record: dict) -> str:
    """sha256 of the record's canonical form (which includes ``prev``: that is the chain)."""
    return hashlib.sha256(canonical(record)).hexdigest()


def now_iso() -> str:
    """UTC timestamp with milliseconds, as every record's ``time``."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def chain_files(path: Path) -> list[Path]:
    """The trail's files in chain order: rotated ``audit.<seq>.jsonl`` by first seq, then the current one."""
    prefix, suffix = f"{path.stem}.", path.suffix
    rotated = []
    for candidate in path.parent.glob(f"{prefix}*{suffix}"):
        middle = candidate.name[len(prefix) : len(candidate.name) - len(suffix)]
        if middle.isdigit():
            rotated.append((int(middle), candidate))
    return [p for _, p in sorted(rotated)] + ([path] if path.exists() else [])


def head_path(path: Path) -> Path:
    """Where the last seq and hash are kept."""
    return path.with_suffix(".head")


def read_head(path: Path) -> tuple[int, str] | None:
    """(seq, hash) of the last record written, or None before the first."""
    try:
        data = json.loads(head_path(path).read_text(encoding="utf-8"))
        return int(data["seq"]), str(data["hash"])
    except FileNotFoundError:
        return None


class AuditTrail:
    """Appends chained records to one trail; ``record`` is non-blocking, ``append`` writes now."""

    def __init__(self, path: Path, *, rotate_bytes: int = 50 * 1024 * 1024, linger: float = 0.0) -> None:
        self.path = Path(path)
        self.rotate_bytes = rotate_bytes
        # The writer waits this long after a record for others to join its batch: one lock, head read,
        # fsync and head write per batch rather than per request (issue 13). ``flush`` still waits for all.
        self._writer = BatchWriter(lambda batch: self.append(batch), name="stitch-audit", linger=linger)

    def record(self, fields: dict) -> None:
        """Queue one record for the writer thread (returns at once)."""
        self._writer.submit(fields)

    def flush(self) -> None:
        """Wait until every queued record is on disk."""
        self._writer.flush()

    def close(self) -> None:
        """Write what is queued and stop the writer."""
        self._writer.close()

    def append(self, records: Iterable[dict]) -> list[dict]:
        """Chain and append records now (under the cross-process lock); returns them as written."""
        records = list(records)
        if not records:
            return []
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.path.with_suffix(".lock")), thread_local=False):
            seq, prev = _chain_end(self.path)
            if self.path.exists() and self.path.stat().st_size >= self.rotate_bytes:
                self.path.rename(self.path.with_name(f"{self.path.stem}.{_first_seq_of(self.path):012d}{self.path.suffix}"))
            chained = []
            for fields in records:
                seq += 1
                rec = {"seq": seq, **fields, "prev": prev}
                rec["hash"] = prev = record_hash(rec)
                chained.append(rec)
            # ASCII lines: a U+2028 or U+0085 in a caller's value must not split a record for line readers.
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write("".join(json.dumps(r, separators=(",", ":")) + "\n" for r in chained))
                handle.flush()
                os.fsync(handle.fileno())
            _write_head(self.path, seq, prev)
        return chained

def _first_seq_of(path: Path) -> int:
    with path.open("rb") as handle:
        first = handle.readline()
    try:
        return int(json.loads(first)["seq"])
    except (ValueError, KeyError, TypeError):
        return 0


def last_record(path: Path) -> dict | None:
    """The file's last record (read from the end), or None if empty, missing or not a record."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            end = size = handle.tell()
            tail = b""
            while end > 0 and tail.count(b"\n") < 2:
                start = max(0, end - 8192)  # a record is ~1 kB: one small read, not 64 kB per batch
                handle.seek(start)
                tail = handle.read(end - start) + tail
                end = start
    except FileNotFoundError:
        return None
    lines = [line for line in tail.split(b"\n") if line.strip()]
    if not size or not lines:
        return None
    try:
        rec = json.loads(lines[-1])
    except ValueError:
        return None
    return rec if isinstance(rec, dict) else None


def _chain_end(path: Path) -> tuple[int, str]:
    """(seq, hash) to chain the next record to: the current file's last record, else the head
    (just after a rotation). A log from before the chain is moved aside, never chained into."""
    last = last_record(path)
    if last is not None and "hash" in last and "seq" in last:
        return int(last["seq"]), str(last["hash"])
    head = read_head(path)
    if path.exists() and path.stat().st_size and head is None:
        path.rename(path.with_name(f"{path.stem}.unchained-{secrets.token_hex(4)}{path.suffix}"))
    return head or (0, GENESIS)


def _write_head(path: Path, seq: int, last: str) -> None:
    tmp = head_path(path).with_suffix(".head.tmp")
    tmp.write_text(json.dumps({"seq": seq, "hash": last}), encoding="utf-8")
    os.replace(tmp, head_path(path))


# -- one trail per data dir and process; the keyed query hash ----------------------------------------

_TRAILS: dict[Path, AuditTrail] = {}
_TRAILS_LOCK = threading.Lock()


def trail_for(settings: Settings) -> AuditTrail:
    """The process-wide trail of these settings (one writer thread per file)."""
    path = settings.audit_log_path.resolve()
    with _TRAILS_LOCK:
        if path not in _TRAILS:
            _TRAILS[path] = AuditTrail(path, rotate_bytes=settings.audit_rotate_bytes, linger=LINGER)
        return _TRAILS[path]


def audit_event(settings: Settings, action: str, **fields: object) -> dict:
    """Record a steward or ingest action now (``key_create``, ``entity_merge``, ``source_takeover``…).

    For library callers and CLI commands; fields must be ids, names and counts, never content.
    """
    return trail_for(settings).append([{"time": now_iso(), "event": action, **fields}])[0]


def query_hasher(settings: Settings):  # noqa: ANN201 - returns a str -> str function
    """HMAC-SHA256 of query text under a per-deployment secret (0600 file): repeats match, guesses don't."""
    secret = _audit_secret(settings.data_dir / "audit.secret")
    return lambda text: hmac.new(secret, text.encode("utf-8"), hashlib.sha256).hexdigest()


def _audit_secret(path: Path) -> bytes:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(secrets.token_hex(32))
        try:
            os.link(tmp, path)  # atomic: a racing process keeps the first secret
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return bytes.fromhex(path.read_text(encoding="utf-8").strip())
