"""Entity corrections from feedback become steward overrides in the registry.

A ``wrong_entity`` label says: this passage's document was linked to entity X, but the names it uses for X
belong to something else. ``stitch tune fit`` applies it with the steward's own operations: a split moves
the document's aliases of X out (they are never re-linked to X: cannot-link rules on their keys), and a
merge moves them into the entity the expert named, if any. Each is audited and can be reverted.

Checked with the labeller's rights as recorded with the request (nobody touches an entity through a
document they cannot see). Overrides act on names, not single documents: every document using the moved
alias moves with it — which is what the registry's key-based rules mean.
"""

from __future__ import annotations

from collections.abc import Collection

from core.errors import ConfigurationError, NotFoundError, StitchError
from entity_resolution.registry import RegistryStore, visible_clause
from entity_resolution.stamps import ChunkStore
from entity_resolution.steward import merge_entities, split_entity
from governance.audit import audit_event
from governance.feedback import Correction, FeedbackStore


class RegistryNames:
    """``governance.feedback.EntityNames`` over the registry: which document names which entity."""

    def __init__(self, store: RegistryStore) -> None:
        self.store = store

    def names(self, doc_id: str, entity_id: str) -> bool:
        return bool(self.aliases_in(doc_id, entity_id))

    def aliases_in(self, doc_id: str, entity_id: str) -> list[tuple[str, str, str]]:
        """(type, key, surface) of the entity's names as the document writes them."""
        return self.store.db.execute(
            "SELECT DISTINCT m.type, m.key, m.surface FROM mentions m JOIN nodes n ON n.type = m.type AND "
            "n.key = m.key WHERE m.doc_id = ? AND n.entity_id = ? ORDER BY m.id", (doc_id, entity_id)).fetchall()

    def visible(self, entity_id: str, acl_tokens: Collection[str]) -> bool:
        clause, params = visible_clause(acl_tokens)
        return self.store.db.execute(
            f"SELECT 1 FROM nodes n JOIN mentions m ON m.type = n.type AND m.key = n.key "
            f"WHERE n.entity_id = ? AND {clause} LIMIT 1", (entity_id, *params)).fetchone() is not None


def _entity_type(store: RegistryStore, entity_id: str) -> str | None:
    row = store.db.execute("SELECT type FROM entities WHERE entity_id = ?", (entity_id,)).fetchone()
    return row[0] if row else None


def _plan(names: RegistryNames, chunks: ChunkStore, packs, item: Correction) -> dict:  # noqa: ANN001 - PackStore
    """What applying ``item`` would do, re-checked with the labeller's recorded tokens; {'skipped': why} if not."""
    try:
        tokens = packs.get(item.request_id).acl_tokens
    except NotFoundError:
        return {"skipped": "the labelled request is no longer recorded"}
    if not chunks.document_chunks(item.doc_id, acl_tokens=tokens, limit=1):
        return {"skipped": "the document is not visible to the labeller"}
    aliases = names.aliases_in(item.doc_id, item.entity_id)
    if not aliases:
        return {"skipped": "the document no longer names that entity"}
    entity_type = aliases[0][0]
    moving = sorted({k for _, k, _ in aliases})
    staying = [k for _, k in names.store.keys_of(item.entity_id) if k not in moving]
    if not staying:
        return {"skipped": "the document names the entity only by aliases all its documents share; a steward must decide"}
    if item.correct_entity_id and (not names.visible(item.correct_entity_id, tokens)
                                   or _entity_type(names.store, item.correct_entity_id) != entity_type):
        return {"skipped": "the named right entity is not visible to the labeller or not of the same type"}
    return {"type": entity_type, "moved_keys": moving, "stayed_key": staying[0],
            "surfaces": sorted({s for _, _, s in aliases})}


def apply_corrections(
    feedback: FeedbackStore, registry: RegistryStore, chunks: ChunkStore, packs, *,  # noqa: ANN001
    settings, actor: str, dry_run: bool = False,  # noqa: ANN001 - core.config.Settings
) -> list[dict]:
    """Apply every pending correction (split, then a merge into the named entity); returns each outcome."""
    names, outcomes = RegistryNames(registry), []
    for item in feedback.entity_corrections(status="pending"):
        plan = _plan(names, chunks, packs, item)
        if dry_run or "skipped" in plan:
            outcomes.append({**item.to_dict(), "status": "would apply" if dry_run and "skipped" not in plan
                             else ("would skip" if dry_run else "skipped"), **plan})
            if not dry_run:
                feedback.settle(item.feedback_id, "skipped", {"reason": plan["skipped"]})
            continue
        note = f"feedback {item.feedback_id} on request {item.request_id}"
        try:
            moved_to = split_entity(registry, item.entity_id, plan["surfaces"], note=note, chunks=chunks)
        except StitchError as exc:  # e.g. the aliases normalise to a name the entity keeps
            feedback.settle(item.feedback_id, "skipped", {"reason": str(exc)})
            outcomes.append({**item.to_dict(), "status": "skipped", "skipped": str(exc)})
            continue
        if item.correct_entity_id:
            moved_to = merge_entities(registry, item.correct_entity_id, moved_to, note=note, chunks=chunks)
        detail = {**plan, "moved_to": moved_to}
        feedback.settle(item.feedback_id, "applied", detail)
        audit_event(settings, "entity_correction", actor=actor, feedback_id=item.feedback_id,
                    request_id=item.request_id, labelled_by=item.principal_id, label_key_id=item.key_id,
                    doc_ids=[item.doc_id], entity_ids=[item.entity_id, moved_to], aliases=len(plan["surfaces"]))
        outcomes.append({**item.to_dict(), "status": "applied", **detail})
    return outcomes


def revert_correction(
    feedback: FeedbackStore, registry: RegistryStore, chunks: ChunkStore | None, feedback_id: int, *,
    settings, actor: str,  # noqa: ANN001
) -> dict:
    """Undo an applied correction: the moved aliases go back to the entity they left (split out, then merged)."""
    item = feedback.correction(feedback_id)
    if item.status != "applied":
        raise ConfigurationError(f"entity correction {feedback_id} is {item.status}, not applied")
    entity_type, moved = item.detail["type"], item.detail["moved_keys"]
    home = registry.entity_of(entity_type, item.detail["stayed_key"])
    holder = registry.entity_of(entity_type, moved[0])
    if not home or not holder:
        raise NotFoundError(f"entity correction {feedback_id}: its names have left the registry since")
    if home != holder:
        if {k for _, k in registry.keys_of(holder)} - set(moved):  # moved into a named entity: take them out again
            holder = split_entity(registry, holder, item.detail["surfaces"], note=f"revert feedback {feedback_id}",
                                  chunks=chunks)
        home = merge_entities(registry, home, holder, note=f"revert feedback {feedback_id}", chunks=chunks)
    feedback.settle(feedback_id, "reverted", {**item.detail, "returned_to": home})
    audit_event(settings, "entity_correction_revert", actor=actor, feedback_id=feedback_id,
                doc_ids=[item.doc_id], entity_ids=[home])
    return {**item.to_dict(), "status": "reverted", "returned_to": home}

