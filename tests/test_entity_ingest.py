"""Ingest with the entity linker: chunks of every system's record carry the same ent_… id."""

from __future__ import annotations

from core.models import SearchFilters
from entity_resolution.linker import linker_for
from ingest.ledger import Ledger
from ingest.manifest import load_manifest
from ingest.pipeline import IngestContext, ingest_manifests

MANIFEST = """source: {source}
kind: records
path: rows.csv
id_field: id
title_field: name
text_fields: [notes]
entity_fields:
  organization: [name]
acl:
  default: [{role}]
"""


def _source(tmp_path, source, role, rows):
    folder = tmp_path / source
    folder.mkdir()
    (folder / "rows.csv").write_text("id,name,notes\n" + "".join(f"{i},{n},{t}\n" for i, n, t in rows), encoding="utf-8")
    (folder / "m.yaml").write_text(MANIFEST.format(source=source, role=role), encoding="utf-8")
    return load_manifest(folder / "m.yaml")


def test_ingest_stamps_one_entity_id_across_systems(tmp_path, settings, encoder, memory_store):
    manifests = [
        _source(tmp_path, "crm", "sales", [("A1", "Acme Corporation", "renewal due in May"), ("A2", "Acme Analytics", "prospect")]),
        _source(tmp_path, "tickets", "support", [("T1", "ACME Corp.", "login fails for ACME users")]),
    ]
    linker = linker_for(settings)
    ctx = IngestContext(settings, encoder, memory_store, Ledger(settings.ledger_path), linker=linker)
    ingest_manifests(manifests, ctx)
    acme = linker.entities_in_query("acme renewal", acl_tokens=["role:sales"])[0].entity_id
    stamped = {d: memory_store.document_chunks(d, acl_tokens=None)[0].payload["entity_ids"] for d in ("crm:A1", "tickets:T1", "crm:A2")}
    assert stamped["crm:A1"] == stamped["tickets:T1"] == [acme]
    assert acme not in stamped["crm:A2"]
    assert memory_store.count(filters=SearchFilters(entity_ids=(acme,))) == 2
    linker.store.close()
