"""The registry-backed EntityLinker (ingest) and QueryEntityResolver (retrieval)."""

from __future__ import annotations

from collections.abc import Collection

from core.config import Settings
from core.models import Document, EntityRef
from entity_resolution.gazetteer import Gazetteer
from entity_resolution.records import Mention
from entity_resolution.registry import RegistryStore
from entity_resolution.settings import DEFAULT_SETTINGS, ResolutionSettings
from entity_resolution.steward import link_new_nodes
from entity_resolution.views import entity_view

MAX_TEXT_CHARS = 200_000


def document_mentions(document: Document, gazetteer: Gazetteer) -> list[Mention]:
    """Typed record mentions (manifest ``entity_fields``) plus known names found in the text."""
    base = {"source": document.source, "doc_id": document.doc_id, "acl": document.acl}
    mentions = [Mention(t, s.strip(), **base) for t, s in document.entity_mentions if s and s.strip()]
    # The record's own names join the gazetteer first, so "Acme Analytics" in its text is not read as "Acme".
    gazetteer.add((m.type, m.key) for m in mentions if m.key)
    for match in gazetteer.find(document.text[:MAX_TEXT_CHARS]):
        mentions.append(Mention(match.type, match.surface, **base, from_text=True))
    return mentions


class RegistryLinker:
    """Links documents to entities in the SQLite registry and finds entities in queries."""

    def __init__(self, store: RegistryStore) -> None:
        self.store = store
        self._gazetteer: Gazetteer | None = None
        self._seen_seq = -1

    @property
    def gazetteer(self) -> Gazetteer:
        """Known names; picks up names other processes (e.g. a CLI ingest) added since the last call."""
        if self._gazetteer is None:
            s = self.store.settings
            self._gazetteer = Gazetteer(fuzzy_cutoff=s.gazetteer_fuzzy_cutoff, min_chars=s.gazetteer_min_chars)
        rows = self.store.db.execute(
            "SELECT type, key, seq FROM nodes WHERE seq > ? ORDER BY seq", (self._seen_seq,)
        ).fetchall()
        if rows:
            self._gazetteer.add((t, k) for t, k, _ in rows)
            self._seen_seq = rows[-1][2]
        return self._gazetteer

    def link_document(self, document: Document) -> tuple[str, ...]:
        """Record the document's mentions (with its ACL), resolve new names; its entity ids."""
        mentions = document_mentions(document, self.gazetteer)
        with self.store.lock:
            new = self.store.replace_document_mentions(document.doc_id, mentions)
            link_new_nodes(self.store, new)
        ids = {self.store.entity_of(m.type, m.key) for m in mentions if m.key}
        return tuple(sorted(i for i in ids if i))

    def entities_in_query(self, text: str, *, acl_tokens: Collection[str]) -> list[EntityRef]:
        """Entities named in ``text`` through an alias visible to ``acl_tokens``; names shown are visible ones."""
        refs: dict[str, EntityRef] = {}
        for match in self.gazetteer.find(text):
            if not self._key_visible(match.type, match.key, acl_tokens):
                continue
            entity_id = self.store.entity_of(match.type, match.key)
            if not entity_id or entity_id in refs:
                continue
            view = entity_view(self.store, entity_id, acl_tokens=acl_tokens, detail=False)
            refs[entity_id] = EntityRef(entity_id, view.name, view.type, match.surface)
        return list(refs.values())

    def _key_visible(self, entity_type: str, key: str, tokens: Collection[str]) -> bool:
        rows = self.store.db.execute("SELECT acl FROM mentions WHERE type = ? AND key = ?", (entity_type, key))
        wanted = set(tokens)
        return any(set(acl.split()) & wanted for (acl,) in rows)


def linker_for(settings: Settings, resolution: ResolutionSettings = DEFAULT_SETTINGS) -> RegistryLinker:
    """The linker over ``settings.registry_path`` (one per process; thread-safe)."""
    return RegistryLinker(RegistryStore(settings.registry_path, resolution))
