"""Library results → the CONTRACT's JSON shapes (shared by HTTP and CLI so they never drift)."""

from __future__ import annotations

from core import payload as P
from core.models import ContextPack, Hit
from retrieval.untrusted import passage_flags


def context_pack_json(pack: ContextPack) -> dict:
    """CONTRACT §5 ``POST /v1/context`` response body."""
    return {
        "request_id": pack.request_id,
        "context": pack.context,
        "passages": [
            {
                "citation": p.citation, "doc_id": p.doc_id, "chunk_ids": list(p.chunk_ids), "text": p.text,
                "score": p.score, "source": p.source, "title": p.title, "uri": p.uri,
                "span": {"start": p.start, "end": p.end}, "pages": list(p.pages),
                "updated_at": p.updated_at, "updated_source": p.updated_source,
                "entity_ids": list(p.entity_ids), "relevance": p.relevance,
                "content_hashes": list(p.content_hashes), "visible_via": list(p.visible_via),
                "redactions": p.redactions, "acl_origin": p.acl_origin,
                "flags": list(p.flags),
            }
            for p in pack.passages
        ],
        "citations": [
            {
                "id": c.id, "doc_id": c.doc_id, "title": c.title, "source": c.source, "uri": c.uri,
                "span": {"start": c.start, "end": c.end}, "pages": list(c.pages),
            }
            for c in pack.citations
        ],
        "entities": [
            {"entity_id": e.entity_id, "name": e.name, "type": e.type, "matched": e.matched} for e in pack.entities
        ],
        "usage": {"tokens": pack.tokens, "passages": len(pack.passages), "truncated": pack.truncated,
                  "tokenizer": "cl100k_base", "redactions": pack.redactions},
        "timings_ms": pack.timings_ms,
        "relevance": pack.relevance,
        "weak": pack.weak,
        "manifest": {"model": pack.model, "acl_tokens": list(pack.acl_tokens), "generated_at": pack.generated_at},
    }


def search_hits_json(hits: list[Hit]) -> list[dict]:
    """``POST /v1/search`` hits."""
    return [
        {
            "rank": rank, "chunk_id": h.point_id, "doc_id": h.payload[P.DOC_ID], "score": round(h.score, 6),
            "text": h.payload[P.TEXT], "source": h.payload[P.SOURCE], "title": h.payload[P.TITLE],
            "uri": h.payload.get(P.URI),
            "span": {"start": h.payload[P.SPAN_START], "end": h.payload[P.SPAN_END]},
            "pages": list(h.payload.get(P.PAGES) or []),
            "flags": list(passage_flags(h.payload[P.TEXT])),
        }
        for rank, h in enumerate(hits, start=1)
    ]
