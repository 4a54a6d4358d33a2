"""The fixture corpus and gold sets are consistent: gold answers are visible to the asking roles,
hidden best answers are not, canaries sit in restricted documents, labelled mentions are in their documents."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from evaluation.suite import FIXTURES, AclOracle, canary_owners, load_queries
from ingest.manifest import load_manifest
from ingest.sources import SourceItem, iter_source_items

ROLES = ("sales", "support", "finance", "legal", "hr", "exec", "engineering")


@pytest.fixture(scope="module")
def manifests():
    return [load_manifest(p) for p in sorted((FIXTURES / "manifests").glob("*.yaml"))]


@pytest.fixture(scope="module")
def oracle(manifests):
    return AclOracle(manifests)


def test_corpus_spans_five_systems_with_every_role(manifests, oracle):
    items = [i for m in manifests for i in iter_source_items(m)]
    assert all(isinstance(i, SourceItem) for i in items)
    assert {m.source for m in manifests} >= {"crm", "tickets", "wiki", "email", "contracts"}
    assert 60 <= len(items) <= 120 and {i.doc_id for i in items} == set(oracle.roles)
    for role in ROLES:
        assert any(role in roles for roles in oracle.roles.values()), role
    assert any("public" in roles for roles in oracle.roles.values())
    suffixes = {Path(i.label).suffix for i in items if ":row " not in i.label}
    assert {".md", ".html", ".eml", ".pdf", ".docx"} <= suffixes


def test_gold_answers_are_visible_and_hidden_best_answers_are_not(oracle):
    queries = load_queries(FIXTURES / "gold" / "queries.jsonl")
    assert 30 <= len(queries) <= 60 and len({q.id for q in queries}) == len(queries)
    for q in queries:
        for doc_id in q.relevant:
            assert doc_id in oracle.roles and oracle.visible(doc_id, q.roles), (q.id, doc_id)
        for doc_id in q.hidden_best:
            assert doc_id in oracle.roles and not oracle.visible(doc_id, q.roles), (q.id, doc_id)
    assert sum(len(q.gold_sources) >= 2 for q in queries) >= 10
    assert sum(bool(q.hidden_best) for q in queries) >= 5


def _document_text(manifests, doc_id: str) -> str:
    source = doc_id.split(":", 1)[0]
    manifest = next(m for m in manifests if m.source == source)
    item = next(i for i in iter_source_items(manifest) if i.doc_id == doc_id)
    return item.load().text


def test_canaries_are_in_restricted_documents(manifests, oracle):
    owners = canary_owners(FIXTURES)
    assert len(owners) >= 8
    for token, doc_id in owners.items():
        assert token in _document_text(manifests, doc_id), token
        assert "public" not in oracle.roles[doc_id]
        assert not all(oracle.visible(doc_id, (role,)) for role in ROLES), token


def test_labelled_entity_mentions_occur_in_their_documents(manifests, oracle):
    with (FIXTURES / "gold" / "entities.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) >= 100
    texts: dict[str, str] = {}
    for row in rows:
        assert row["doc_id"] in oracle.roles, row
        assert row["entity_key"].split(":", 1)[0] in ("org", "person"), row
        if row["doc_id"] not in texts:
            texts[row["doc_id"]] = _raw_text(manifests, row["doc_id"])
        assert row["mention"] in texts[row["doc_id"]], row
    keys = {r["entity_key"] for r in rows}
    assert {"org:acme", "org:acme-de", "org:acme-analytics"} <= keys


def _raw_text(manifests, doc_id: str) -> str:
    """Record fields (including entity fields that are not indexed as text) or the parsed file."""
    source, native = doc_id.split(":", 1)
    manifest = next(m for m in manifests if m.source == source)
    if manifest.kind == "records":
        root = manifest.root
        for file in [root] if root.is_file() else sorted(root.iterdir()):
            if file.suffix == ".jsonl":
                rows = [json.loads(x) for x in file.read_text().splitlines() if x.strip()]
            else:
                with file.open(newline="", encoding="utf-8") as handle:
                    rows = list(csv.DictReader(handle))
            for row in rows:
                if str(row.get(manifest.id_field)) == native:
                    return json.dumps(row, ensure_ascii=False)
        raise AssertionError(doc_id)
    return _document_text(manifests, doc_id)


def test_make_documents_redraws_the_committed_contract_files_byte_for_byte(tmp_path, monkeypatch):
    """The PDFs and DOCX files under manifests/contracts are what fixtures/make_documents.py draws (with the
    drawing it shares with the generated corpus, evaluation/corpus_files.py): nothing else, nothing changed."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_documents", FIXTURES / "make_documents.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    monkeypatch.setattr(script, "OUT", tmp_path)
    script.main()
    committed = FIXTURES / "manifests" / "contracts"
    drawn = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert drawn == sorted(p.relative_to(committed) for p in committed.rglob("*") if p.suffix in (".pdf", ".docx"))
    changed = [str(rel) for rel in drawn if (tmp_path / rel).read_bytes() != (committed / rel).read_bytes()]
    assert not changed, f"regenerating changes {changed}: re-run fixtures/make_documents.py and commit, or fix it"
