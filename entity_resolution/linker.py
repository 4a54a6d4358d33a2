"""The registry-backed EntityLinker (ingest) and QueryEntityResolver (retrieval)."""

from __future__ import annotations

import json
from collections.abc import Callable, Collection

from rapidfuzz import fuzz

from core.config import Settings
from core.models import Document, EntityRef
from core.payload import REDACT, SOURCE, TEXT
from entity_resolution.gazetteer import Gazetteer
from entity_resolution.normalize import normalize_name
from entity_resolution.people import find_people, parse_person, split_people
from entity_resolution.records import Mention
from entity_resolution.registry import RegistryStore
from entity_resolution.settings import DEFAULT_SETTINGS, ResolutionSettings
from entity_resolution.stamps import ChunkStore, document_entity_ids, restamp
from entity_resolution.steward import link_new_nodes, refresh_entity
from entity_resolution.views import entity_view

MAX_TEXT_CHARS = 200_000
Mask = Callable[[str, list], str]  # (stored text, the chunk payload's redaction rules) → text safe to link


def document_mentions(document: Document, gazetteer: Gazetteer) -> list[Mention]:
    """Typed record mentions (manifest ``entity_fields``), people named by mail headers, addresses and Notes
    names in the text, plus known names found in the text."""
    base = {"source": document.source, "doc_id": document.doc_id, "acl": document.acl}
    text = document.text[:MAX_TEXT_CHARS]
    mentions = [_mention(t, s, base) for t, value in document.entity_mentions if value and value.strip()
                for s in (split_people(value) if t == "person" else [value.strip()])]
    # The record's own names join the gazetteer first, so "Acme Analytics" in its text is not read as "Acme".
    gazetteer.add((m.type, m.key) for m in mentions if m.key)
    return mentions + text_mentions(text, gazetteer, base)


def text_mentions(text: str, gazetteer: Gazetteer, base: dict) -> list[Mention]:
    """People that mail headers, addresses and Notes names introduce (they join the gazetteer, so their
    signature "George Rahal" is found too), then every known name in the text."""
    found = [_mention("person", person.surface, base, from_text=True) for person in find_people(text)]
    gazetteer.add((m.type, m.key) for m in found if m.key)
    return found + [_mention(m.type, m.surface, base, from_text=True) for m in gazetteer.find(text)]


def _mention(entity_type: str, surface: str, base: dict, *, from_text: bool = False) -> Mention:
    """A person's company e-mail domain is evidence beside the name ("j.arnold@enron.com" ~ "John Arnold")."""
    person = parse_person(surface) if entity_type == "person" else None
    domain = (("email_domain", person.org_domain),) if person and person.org_domain else ()
    return Mention(entity_type, surface, **base, attributes=domain, from_text=from_text)


class RegistryLinker:
    """Links documents to entities in the SQLite registry and finds entities in queries."""

    def __init__(self, store: RegistryStore) -> None:
        self.store = store
        self._gazetteer: Gazetteer | None = None
        self._seen_seq = -1
        self._seen_removals = -1

    @property
    def gazetteer(self) -> Gazetteer:
        """Known names; picks up names other processes (e.g. a CLI ingest) added since the last call,
        and starts afresh when names have left the registry."""
        removals = self.store.removals()
        if self._gazetteer is None or removals != self._seen_removals:
            s = self.store.settings
            self._gazetteer = Gazetteer(fuzzy_cutoff=s.gazetteer_fuzzy_cutoff, min_chars=s.gazetteer_min_chars)
            self._seen_seq, self._seen_removals = -1, removals
        rows = self.store.db.execute(
            "SELECT type, key, seq FROM nodes WHERE seq > ? ORDER BY seq", (self._seen_seq,)
        ).fetchall()
        if rows:
            self._gazetteer.add((t, k) for t, k, _ in rows)
            self._gazetteer.add_acronyms(self.store.db.execute(
                "SELECT DISTINCT m.type, m.key, m.surface FROM mentions m JOIN nodes n ON n.type = m.type AND "
                "n.key = m.key WHERE n.seq > ? AND m.from_text = 0", (self._seen_seq,)))
            self._seen_seq = rows[-1][2]
        return self._gazetteer

    def link_document(self, document: Document) -> tuple[str, ...]:
        """Record the document's mentions (with its ACL), resolve new names; its entity ids."""
        mentions = document_mentions(document, self.gazetteer)
        with self.store.lock:
            new, touched = self.store.replace_document_mentions(document.doc_id, mentions, document.acl)
            link_new_nodes(self.store, new)
            for entity_id in touched:
                refresh_entity(self.store, entity_id)
            ids = document_entity_ids(self.store, document.doc_id)
            self.store.record_link(document.doc_id, ids)
        return tuple(ids)

    def set_document_acl(self, doc_id: str, acl: Collection[str]) -> None:
        """The document's ACL changed without its content being re-read."""
        self.store.set_document_acl(doc_id, acl)

    def forget_document(self, doc_id: str) -> None:
        """The document left its source: its names, aliases and counts leave the registry."""
        with self.store.lock:
            for entity_id in self.store.forget_document(doc_id):
                refresh_entity(self.store, entity_id)

    def relink(self, chunks: ChunkStore, *, mask: Mask | None = None) -> int:
        """After a job: find names learned since each stored document was read in its stored text, then
        re-stamp every document whose entity ids changed. Returns the number of documents re-stamped.

        ``mask(text, payload_rules)`` hides redacted values before the text is read (a redacted value never
        becomes an alias); without it, documents that carry redaction rules are not re-read."""
        with self.store.lock:
            top = self.store.max_seq()
            stale = self.store.db.execute("SELECT doc_id, seq, entity_ids FROM linked WHERE seq < ?", (top,)).fetchall()
            if stale:
                newer = self._names_since(min(seq for _, seq, _ in stale))
                links = []  # written in one transaction: one commit per document was 28 % of this pass
                for doc_id, _, stamped in stale:
                    if self._rescan(doc_id, chunks, newer, mask):
                        top = self.store.max_seq()  # a name this document gave counts as known to it
                    links.append((doc_id, top, json.loads(stamped)))
                self.store.record_links(links)
            return restamp(self.store, chunks)

    def _names_since(self, seq: int) -> Gazetteer:
        s = self.store.settings
        newer = Gazetteer(fuzzy_cutoff=s.gazetteer_fuzzy_cutoff, min_chars=s.gazetteer_min_chars)
        newer.add(self.store.db.execute("SELECT type, key FROM nodes WHERE seq > ?", (seq,)).fetchall())
        return newer

    def _rescan(self, doc_id: str, chunks: ChunkStore, newer: Gazetteer, mask: Mask | None) -> bool:
        """Re-read one stored document's text mentions if a newer name occurs in it; whether it did."""
        hits = chunks.document_chunks(doc_id, acl_tokens=None)
        text = "\n\n".join(str(h.payload.get(TEXT, "")) for h in hits)[:MAX_TEXT_CHARS]
        rules = hits[0].payload.get(REDACT) if hits else None
        if rules:
            text = mask(text, rules) if mask is not None else ""
        if not (hits and newer.find(text)):  # cheap pre-check against the new names only
            return False
        source = str(hits[0].payload.get(SOURCE, ""))
        found = text_mentions(text, self.gazetteer, {"source": source, "doc_id": doc_id})
        acl = [r[0] for r in self.store.db.execute("SELECT token FROM doc_acl WHERE doc_id = ?", (doc_id,))]
        _, touched = self.store.replace_document_mentions(doc_id, found, acl, text_only=True)
        for entity_id in touched:
            refresh_entity(self.store, entity_id)
        return True

    def entities_in_query(
        self, text: str, *, acl_tokens: Collection[str], fuzzy_cutoff: float | None = None
    ) -> list[EntityRef]:
        """Entities named in ``text`` through an alias visible to ``acl_tokens``; names shown are visible ones.

        Only visible names take part in matching: a hidden longer name never shadows a visible shorter one,
        so the answer is the same as if the hidden names did not exist. ``fuzzy_cutoff`` (learned by
        ``stitch tune`` from feedback) drops misspelt matches scoring below it (above 100: exact names only)."""
        refs: dict[str, EntityRef] = {}
        tokens = tuple(acl_tokens)
        visible = lambda t, k: self.store.key_visible(t, k, tokens)  # noqa: E731
        for match in self.gazetteer.find(text, allowed=visible, acronyms=True):
            if match.fuzzy and fuzzy_cutoff is not None and fuzz.ratio(normalize_name(match.surface), match.key) < fuzzy_cutoff:
                continue
            entity_id = self.store.entity_of(match.type, match.key)
            if not entity_id or entity_id in refs:
                continue
            view = entity_view(self.store, entity_id, acl_tokens=tokens, detail=False)
            refs[entity_id] = EntityRef(entity_id, view.name, view.type, _echo(match.type, match.surface))
        return list(refs.values())


def _echo(entity_type: str, surface: str) -> str:
    """What the answer says matched: a person named by an e-mail address is echoed by name, never by the
    address (an address is a redactable value; the response must not carry it even when the query did)."""
    person = parse_person(surface) if entity_type == "person" and "@" in surface else None
    return person.display if person else surface


def linker_for(settings: Settings, resolution: ResolutionSettings = DEFAULT_SETTINGS) -> RegistryLinker:
    """The linker over ``settings.registry_path`` (one per process; thread-safe)."""
    return RegistryLinker(RegistryStore(settings.registry_path, resolution))
