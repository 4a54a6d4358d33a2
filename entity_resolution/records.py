"""What resolution works on: a mention (one name in one record or text) and a node (one distinct normalised name)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from entity_resolution.normalize import normalize_name
from entity_resolution.parallel import map_slices
from entity_resolution.people import person_key


@dataclass(frozen=True)
class Mention:
    """One surface form of an entity seen in one record/document, with optional attribute evidence."""

    type: str
    surface: str
    source: str = ""
    doc_id: str = ""
    acl: tuple[str, ...] = ()
    attributes: tuple[tuple[str, str], ...] = ()  # (field, value): email_domain, website, phone, address, parent
    from_text: bool = False  # found by the gazetteer in free text rather than named by a record field

    @property
    def key(self) -> str:
        """The normalised comparison key."""
        return mention_key(self.type, self.surface)


def mention_key(entity_type: str, surface: str) -> str:
    """Normalised key of a surface form for its entity type."""
    return person_key(surface) if entity_type == "person" else normalize_name(surface)


@dataclass
class Node:
    """All mentions sharing (type, key): compared once, clustered as one."""

    type: str
    key: str
    order: int  # first-seen position: makes canonical keys and ids stable
    surfaces: dict[str, int] = field(default_factory=dict)
    attributes: dict[str, set[str]] = field(default_factory=dict)

    def add(self, mention: Mention) -> None:
        self.count(mention.surface, from_text=mention.from_text)
        for name, value in mention.attributes:
            if value:
                self.attributes.setdefault(name, set()).add(value)


    def count(self, surface: str, *, from_text: bool) -> None:
        """Record fields outweigh free-text hits when the canonical name is chosen."""
        self.surfaces[surface] = self.surfaces.get(surface, 0) + (1 if from_text else RECORD_WEIGHT)


RECORD_WEIGHT = 1000


def nodes_from_mentions(mentions: list[Mention]) -> list[Node]:
    """Collapse mentions to nodes by (type, key), in first-seen order; empty keys are dropped."""
    written = list(dict.fromkeys((m.type, m.surface) for m in mentions))  # a surface recurs: normalise it once
    keys = dict(zip(written, map_slices(written_keys, written)))
    nodes: dict[tuple[str, str], Node] = {}
    for mention in mentions:
        key = keys[(mention.type, mention.surface)]
        if not key:
            continue
        node = nodes.get((mention.type, key))
        if node is None:
            node = nodes[(mention.type, key)] = Node(mention.type, key, len(nodes))
        node.add(mention)
    return list(nodes.values())


def written_keys(written: Sequence[tuple[str, str]]) -> list[str]:
    """The key of each (type, surface); module-level so that worker processes can run it."""
    return [mention_key(entity_type, surface) for entity_type, surface in written]
