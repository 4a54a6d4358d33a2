"""Examples shown in the OpenAPI docs (and tried by schema-driven tests)."""

from __future__ import annotations

JOB_ID = "job_3f2a9c0d4b7e4e8f9a1b2c3d4e5f6a7b"
REQUEST_ID = "9b2f6c1e0a7d4c3b8e5f1a2b3c4d5e6f"
_SPAN = {"start": 0, "end": 412}

CONTEXT_IN = {
    "query": "How do refunds work for enterprise customers?",
    "principal": {"id": "alice", "roles": ["sales"]},
    "top_k": 8,
    "max_tokens": 2000,
    "filters": {"sources": ["wiki"], "entity_ids": [], "updated_after": "2026-01-01"},
}
SEARCH_IN = {"query": "incident runbook paging", "principal": {"id": "bob", "roles": ["engineering"]}, "top_k": 10}
CONTEXT_OUT = {
    "request_id": REQUEST_ID,
    "context": "[1] Enterprise customers may request a refund within 30 days ...",
    "passages": [{
        "citation": 1, "doc_id": "wiki:sales/enterprise-refund-policy.md", "chunk_ids": ["4c1d..."],
        "text": "Enterprise customers may request a refund within 30 days ...", "score": 0.83, "source": "wiki",
        "title": "Enterprise Refund Policy", "uri": "https://wiki.northwind.example/sales/enterprise-refund-policy.md",
        "span": _SPAN, "pages": [], "updated_at": None, "updated_source": None, "entity_ids": [],
        "content_hashes": ["9a0b..."], "visible_via": ["role:sales"],
    }],
    "citations": [{
        "id": 1, "doc_id": "wiki:sales/enterprise-refund-policy.md", "title": "Enterprise Refund Policy",
        "source": "wiki", "uri": "https://wiki.northwind.example/sales/enterprise-refund-policy.md",
        "span": _SPAN, "pages": [], "indexed_at": "2026-11-23T12:35:00+00:00",
    }],
    "entities": [],
    "usage": {"tokens": 412, "passages": 1, "truncated": False, "tokenizer": "cl100k_base"},
    "timings_ms": {"embed": 4.1, "search": 6.3, "rerank": 0.0, "assemble": 0.8, "total": 12.0},
    "manifest": {"model": "all-MiniLM-L6-v2", "acl_tokens": ["public", "role:sales", "user:alice"],
                 "generated_at": "2026-12-01T12:00:00+00:00"},
    "index_as_of": "2026-11-23T12:35:00+00:00",
    "filtered_for": {"principal_id": "alice", "roles": ["sales"], "acl_tokens": ["public", "role:sales", "user:alice"]},
}
SEARCH_OUT = {
    "request_id": REQUEST_ID,
    "hits": [{
        "rank": 1, "chunk_id": "4c1d...", "doc_id": "wiki:engineering/incident-runbook.md", "score": 0.5,
        "text": "When the pager fires ...", "source": "wiki", "title": "Incident Runbook",
        "uri": "https://wiki.northwind.example/engineering/incident-runbook.md", "span": _SPAN, "pages": [],
    }],
    "timings_ms": {"embed": 4.0, "search": 5.2},
}
DOCUMENT_OUT = {
    "doc_id": "wiki:company-handbook.md", "title": "Company Handbook", "source": "wiki",
    "uri": "https://wiki.northwind.example/company-handbook.md", "updated_at": None, "updated_source": None,
    "text": "Welcome to Northwind ...", "chunks": 3,
}
ERROR_OUT = {"error": {"code": "forbidden", "message": "this API key lacks the 'ingest' scope", "request_id": REQUEST_ID}}
INGEST_IN = [
    {"manifests": ["manifests/wiki.yaml"], "full": False},
    {"manifest": {"source": "handbook", "kind": "files", "path": "exports/handbook", "include": ["**/*.md"],
                  "acl": {"default": ["sales", "exec"]}}, "full": True, "take_over": False},
]
JOB_OUT = {
    "job_id": JOB_ID, "status": "succeeded", "sources": ["wiki"], "full": False,
    "submitted_at": 1795000000.0, "started_at": 1795000000.1, "finished_at": 1795000004.2,
    "progress": {"documents": 6, "chunks": 11},
    "report": {"added": 6, "updated": 0, "unchanged": 0, "deleted": 0, "failed": 0, "invisible": 1, "acl_defaulted": 0,
               "chunks": 11, "sources": ["wiki"], "errors": [], "warnings": [], "takeovers": [], "seconds": 4.1,
               "exit_code": 0},
    "error": None, "take_over": False, "allow_mass_delete": False,
}
