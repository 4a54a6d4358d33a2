"""The request side of the audit trail (``governance.audit``): routes ``note`` who asked, for whom and
what came back or was denied; the edge middleware turns that into one chained record per request.
Never the key, the query text or document text (queries are kept as a keyed hash)."""

from __future__ import annotations

import hashlib

from fastapi import Request


def note(request: Request, **fields: object) -> None:
    """Attach audit fields to the current request; the edge middleware writes them when it ends.

    Ids, names, counts and hashes only (``principal_id, roles, query_hash, doc_ids, chunk_ids,
    content_hashes, requested_doc_id, entity_ids, action, job_id, sources, paths`` …), never content."""
    current = getattr(request.state, "audit", None) or {}
    request.state.audit = {**current, **fields}


def query_hash(request: Request, text: str) -> str:
    """HMAC of the query under the deployment's audit secret: repeats match, guesses cannot be checked."""
    return request.app.state.query_hasher(text)


def content_hash(text: str) -> str:
    """sha256 of returned text: proves later what was shown without keeping it."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def request_record(state: dict, **edge: object) -> dict:
    """The audit record of one request: the edge's facts plus what the route noted."""
    noted = state.get("audit") or {}
    record = {"event": "request", "request_id": edge.pop("request_id"), "key_id": state.get("key_id"),
              "principal_id": noted.get("principal_id"), "roles": noted.get("roles"),
              "query_hash": noted.get("query_hash"), "doc_ids": noted.get("doc_ids", [])}
    record.update({k: v for k, v in noted.items() if k not in record})
    record.update(edge)
    return record
