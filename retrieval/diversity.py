"""Per-system diversity for queries that name an entity: the pack about one customer should hold that
customer's passages from every system the principal may see (CRM, tickets, email, wiki, contracts),
not ten fills of the best-matching system's template.

The fused ranking alone cannot promise that: a question worded like a sales email ("why might they not
renew") ranks every customer's renewal email above the named customer's ticket. So a second query,
narrowed to the query's entities (ACL filter and caller filters inside the store, like every query),
finds each system's best passage about them, and those passages get reserved slots near the top.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import replace

from core import payload as P
from core.models import Hit, SearchFilters
from core.store.protocol import HybridQuery, PrefetchSpec, VectorStore
from retrieval.search import QueryVectors, SearchPlan

COVERAGE_DEPTH = 64  # chunks about the query's entities considered when choosing each system's best


def entity_coverage(
    store: VectorStore, vectors: QueryVectors, *, acl_tokens: Collection[str], entity_ids: tuple[str, ...],
    plan: SearchPlan, filters: SearchFilters | None = None, depth: int = COVERAGE_DEPTH,
) -> list[Hit]:
    """Chunks about ``entity_ids`` ranked by the query (dense and sparse fused), visible to ``acl_tokens``."""
    if not entity_ids:
        return []
    specs = [PrefetchSpec(P.DENSE, vectors.dense, depth, entity_ids=entity_ids)]
    if vectors.sparse.indices:
        specs.append(PrefetchSpec(P.SPARSE, vectors.sparse, depth, entity_ids=entity_ids))
    query = HybridQuery(tuple(specs), limit=depth, fusion=plan.fusion, rrf_k=plan.rrf_k, exact=plan.exact)
    return store.search(query, acl_tokens=acl_tokens, filters=filters)


def _about(hit: Hit, entity_ids: frozenset[str]) -> bool:
    return bool(entity_ids.intersection(hit.payload.get(P.ENTITY_IDS) or ()))


def _referenced(hit: Hit, texts: str) -> bool:
    """Does the text name this record by its id ("ticket T-5001")? Paths are never written in prose."""
    local = str(hit.payload.get(P.DOC_ID, "")).split(":", 1)[-1]
    return "/" not in local and len(local) >= 3 and re.search(rf"(?<!\w){re.escape(local)}(?!\w)", texts) is not None


def _best_per_system(coverage: list[Hit], wanted: frozenset[str], texts: str) -> list[Hit]:
    """Each system's best passage about the entities, in coverage order; a record the leading hits
    refer to by id ("after the crashes we reported in T-5001") beats its system's best match."""
    best: dict[str, Hit] = {}
    for hit in coverage:
        if not _about(hit, wanted):
            continue
        source = hit.payload.get(P.SOURCE)
        if source not in best or (_referenced(hit, texts) and not _referenced(best[source], texts)):
            best[source] = hit
    order = {h.point_id: i for i, h in enumerate(coverage)}
    return sorted(best.values(), key=lambda h: order[h.point_id])


def reserve_systems(
    hits: list[Hit], coverage: list[Hit], *, entity_ids: tuple[str, ...], window: int, slots: int,
) -> list[Hit]:
    """``hits`` with each system's best passage about the entities within the first ``window`` positions.

    A system's best passage is the coverage query's best about the entities, or the one the leading hits
    name by id; slots left over go to the next coverage passages. Documents already in the window need
    no slot. At most ``slots`` passages are added; they take the last places of the window and push the
    fused hits there down, so the fused leaders keep their ranks. A reserved hit takes the score of the first hit it pushes down:
    scores stay in rank order (the coverage query's fused scores are on another scale)."""
    head = hits[:window]
    shown = {h.payload.get(P.DOC_ID) for h in head}
    texts = "\n".join(str(h.payload.get(P.TEXT) or "") for h in head)
    wanted = frozenset(entity_ids)
    reserved: list[Hit] = []
    # each system's best first, then the next passages about the entities (another CRM record than the
    # contact already shown), one per document: better than more fills of another customer's template
    for hit in _best_per_system(coverage, wanted, texts) + [h for h in coverage if _about(h, wanted)]:
        doc_id = hit.payload.get(P.DOC_ID)
        if len(reserved) >= slots:
            break
        if doc_id not in shown:
            shown.add(doc_id)
            reserved.append(hit)
    if not reserved:
        return hits
    ids = {h.point_id for h in reserved}
    rest = [h for h in hits if h.point_id not in ids]
    keep = max(0, min(window, len(rest) + len(reserved)) - len(reserved))
    tie = rest[min(keep, len(rest) - 1)].score if rest else None
    placed = [h if tie is None else replace(h, score=tie) for h in reserved]
    return rest[:keep] + placed + rest[keep:]
