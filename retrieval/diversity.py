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
from core.store.protocol import PrefetchSpec, VectorStore
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
    # the entity filter is selective: the plan's filtered-HNSW settings (beam width, ACORN) matter most here
    return store.search(plan.query(specs, limit=depth), acl_tokens=acl_tokens, filters=filters)


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


def _about_others(hit: Hit, entity_ids: frozenset[str]) -> bool:
    """A passage about other entities only: another customer's fill of the template the query matched."""
    linked = hit.payload.get(P.ENTITY_IDS) or ()
    return bool(linked) and not entity_ids.intersection(linked)


def _reserved(head: list[Hit], coverage: list[Hit], wanted: frozenset[str], slots: int) -> list[Hit]:
    """Each system's best passage about the entities not yet shown, then (only in place of passages
    about other entities) the next ones: the CRM account besides the contact already shown."""
    shown = {h.payload.get(P.DOC_ID) for h in head}
    texts = "\n".join(str(h.payload.get(P.TEXT) or "") for h in head)
    firsts = [h for h in _best_per_system(coverage, wanted, texts) if h.payload.get(P.DOC_ID) not in shown][:slots]
    shown.update(h.payload.get(P.DOC_ID) for h in firsts)
    fills: list[Hit] = []
    room = min(slots - len(firsts), sum(_about_others(h, wanted) for h in head))
    for hit in coverage:
        if len(fills) >= room:
            break
        if _about(hit, wanted) and hit.payload.get(P.DOC_ID) not in shown:
            shown.add(hit.payload.get(P.DOC_ID))
            fills.append(hit)
    return firsts + fills


def reserve_systems(
    hits: list[Hit], coverage: list[Hit], *, entity_ids: tuple[str, ...], window: int, slots: int,
) -> list[Hit]:
    """``hits`` with each system's best passage about the entities within the first ``window`` positions.

    A system's best passage is the coverage query's best about the entities, or the one the leading hits
    name by id; the slots left may go to the next passages about the entities, but only in place of
    passages about other entities. At most ``slots`` passages are added at the end of the window; the
    fused hits they push out are the lowest-ranked about other entities first, so the fused leaders and
    passages about no entity (a general policy) keep their places. Scores are clamped to rank order
    (the coverage query's fused scores are on another scale)."""
    wanted = frozenset(entity_ids)
    reserved = _reserved(hits[:window], coverage, wanted, slots)
    if not reserved:
        return hits
    ids = {h.point_id for h in reserved}
    rest = [h for h in hits if h.point_id not in ids]
    head, tail = rest[:window], rest[window:]
    excess = len(head) + len(reserved) - window
    demoted: set[int] = set()
    for i in sorted(range(len(head)), key=lambda i: (not _about_others(head[i], wanted), -i))[:max(0, excess)]:
        demoted.add(i)
    ordered = ([h for i, h in enumerate(head) if i not in demoted] + reserved
               + [h for i, h in enumerate(head) if i in demoted] + tail)
    out = ordered[:1]
    for hit in ordered[1:]:
        out.append(hit if hit.score <= out[-1].score else replace(hit, score=out[-1].score))
    return out
