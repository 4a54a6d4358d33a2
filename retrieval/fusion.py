"""Document-level fusion of chunk scores: a document that matches in several chunks ranks above one
that matches in one chunk only, instead of being scored by its best chunk alone (max-pooling).

The document's best chunk takes the document score ``best + weight · Σ other chunks`` (of the hits
returned); its other chunks keep their own scores, so they still rank after it. Documents, ordered
by their first chunk, are therefore in document-score order, and ``/v1/search`` still returns chunks.
``weight`` 0 is max-pooling.
"""

from __future__ import annotations

from dataclasses import replace

from core import payload as P
from core.models import Hit


def fuse_documents(hits: list[Hit], weight: float) -> list[Hit]:
    """Hits re-ranked so each document's best chunk carries the fused document score."""
    if weight == 0.0 or not hits:
        return hits
    best: dict[str, int] = {}
    extra: dict[str, float] = {}
    for i, hit in enumerate(hits):
        doc = str(hit.payload.get(P.DOC_ID, hit.point_id))
        if doc not in best or hit.score > hits[best[doc]].score:
            if doc in best:
                extra[doc] = extra.get(doc, 0.0) + max(hits[best[doc]].score, 0.0)
            best[doc] = i
        else:
            extra[doc] = extra.get(doc, 0.0) + max(hit.score, 0.0)
    lifted = {i: doc for doc, i in best.items() if extra.get(doc)}
    fused = [replace(h, score=h.score + weight * extra[lifted[i]]) if i in lifted else h for i, h in enumerate(hits)]
    order = sorted(range(len(fused)), key=lambda i: (-fused[i].score, i))  # stable: ties keep store order
    return [fused[i] for i in order]
