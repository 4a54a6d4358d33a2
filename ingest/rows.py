"""Rows of tabular text (CSV with a header, JSON array, JSON lines), numbered as an editor shows them.

Shared by records sources (one document per row) and by files trees (one document per file), so a
problem is reported the same way in both: the line it is on, in plain words.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator

Row = tuple[str, dict | None, str | None]  # (where: "row N" or "line N", row, problem)


def decode_utf8(raw: bytes) -> tuple[str | None, tuple[str, str] | None]:
    """(text, None), or (None, (where, problem)) naming the line and byte of the first bad byte."""
    try:
        return raw.decode("utf-8-sig"), None
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        return None, (f"line {line}", f"not UTF-8 text ({exc.reason} at byte {exc.start}); "
                                      "save the file as UTF-8 — no row of it was read")


def csv_rows(text: str) -> Iterator[Row]:
    """CSV rows by the line each starts on; a malformed row (e.g. an unterminated quote) ends the file."""
    reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
    start = 2
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            why = ("a quoted field is never closed (unterminated '\"')" if "end of data" in str(exc)
                   else f"malformed CSV ({exc})")
            yield f"line {start}", None, f"{why}; this row and the rest of the file were not read"
            return
        if None in row:
            yield f"row {start}", None, "more values than header columns"
        else:
            yield f"row {start}", row, None
        start = reader.line_num + 1


def jsonl_rows(text: str) -> Iterator[Row]:
    """One JSON object per line; blank lines are skipped, a bad line is reported by its number."""
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            yield f"row {number}", None, f"invalid JSON ({exc.msg} at column {exc.colno})"
            continue
        yield (f"row {number}", row, None) if isinstance(row, dict) else (f"row {number}", None, "not an object")


def json_array_rows(text: str) -> Iterator[Row]:
    """The objects of a JSON array, numbered from 1."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        yield f"line {exc.lineno}", None, f"invalid JSON ({exc.msg} at column {exc.colno})"
        return
    if not isinstance(data, list):
        yield "", None, "a JSON records file holds an array of objects"
        return
    for number, row in enumerate(data, start=1):
        yield (f"row {number}", row, None) if isinstance(row, dict) else (f"row {number}", None, "not an object")


def rows_of(kind: str, raw: bytes) -> Iterator[Row]:
    """Rows of ``raw`` read as ``kind`` (``csv`` | ``json`` | ``jsonl``)."""
    text, problem = decode_utf8(raw)
    if problem:
        yield problem[0], None, problem[1]
        return
    yield from {"csv": csv_rows, "json": json_array_rows, "jsonl": jsonl_rows}[kind](text)
