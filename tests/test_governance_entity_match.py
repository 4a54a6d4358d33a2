"""``stitch tune`` refits the query entity-match cutoff on feedback: a misspelt name of an unknown company
that fuzzily matches a known one pulls in the wrong company's records; labels teach a stricter cutoff,
held-out nDCG@10 shows by how much, and exact names keep linking."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.keys import KeyStore
from api.services import Services
from core.config import Settings
from evaluation.feedback import run_tune
from governance.tuning import load_state
from ingest.manifest import load_manifest
from ingest.pipeline import ingest_manifests

# (known company, a different company one letter away: rapidfuzz ratio 92-95 against the known name)
COMPANIES = [
    ("Norvex Freightways", "Norvax Freightways"), ("Quillon Biotechs", "Quillan Biotechs"),
    ("Tarmo Dynamics Ltd", "Tarmu Dynamics Ltd"), ("Brykethan Capital", "Brykethon Capital"),
    ("Ulvadra Partners", "Ulvadro Partners"), ("Pelsurn Harvesters", "Pelsurm Harvesters"),
    ("Keth Orbital Works", "Keth Orbitol Works"), ("Zenmova Logistics", "Zenmava Logistics"),
    ("Draquil Systems", "Draquel Systems"), ("Vornix Pharmaceut", "Vornax Pharmaceut"),
    ("Laxtaro Minerals", "Laxtoro Minerals"), ("Ovapel Networks", "Ovapol Networks"),
    ("Surnbry Textiles", "Surnbri Textiles"), ("Mozenka Robotics", "Mozanka Robotics"),
]
TOPICS = ["zorblax sync", "quenta login", "vexil export", "morrow billing", "tandem upload", "krill search",
          "ossify backup", "plinth printing", "garnet webhook", "hollis invoice", "juniper calendar",
          "lattice report", "mosaic import", "nectar badge"]


KB_KINDS = {
    "procedure": "When {topic} fails for a customer, open the admin panel, rotate the token and rerun the {topic} job.",
    "faq": "Why does {topic} stop? Usually an expired token; {topic} recovers once the job is rerun.",
    "runbook": "On-call steps for {topic}: check the queue, restart the {topic} worker, confirm with the customer.",
}


def _corpus(root):
    (root / "accounts").mkdir()
    rows = ["id,company,notes"]
    for i, (known, _) in enumerate(COMPANIES):
        for n in range(2):
            rows.append(f'{i}-{n},{known},"{known} account review {n}: renewal terms, pricing and contacts for {known}."')
    (root / "accounts" / "rows.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (root / "accounts.yaml").write_text(
        "source: accounts\nkind: records\npath: accounts\nid_field: id\ntext_fields: [notes]\n"
        "entity_fields:\n  organization: [company]\nacl:\n  default: [support]\n", encoding="utf-8")
    (root / "kb").mkdir()
    for i, topic in enumerate(TOPICS):  # three answers per topic: a wrong company's records push some down
        for kind, text in KB_KINDS.items():
            (root / "kb" / f"{topic.replace(' ', '-')}-{kind}.md").write_text(
                f"# {topic} {kind}\n\n{text.format(topic=topic)} Reviewed in release {i + 2}.\n", encoding="utf-8")
    (root / "kb.yaml").write_text("source: kb\nkind: files\npath: kb\nacl:\n  default: [support]\n", encoding="utf-8")
    return [load_manifest(root / "accounts.yaml"), load_manifest(root / "kb.yaml")]


@pytest.fixture()
def served(tmp_path, encoder):
    services = Services(Settings(data_dir=tmp_path / "data"))
    services.__dict__["encoder"] = encoder
    ingest_manifests(_corpus(tmp_path), services.ingest_context())
    key = KeyStore(services.settings.keys_path).create(scopes=("context",), roles=("support",), principals=("*",))
    with TestClient(create_app(services.settings, services=services)) as client:
        yield client, {"Authorization": f"Bearer {key}"}, services
    services.store.close()


def _ask(client, headers, request_id, query):
    body = {"query": query, "principal": {"id": "sam", "roles": ["support"]}, "top_k": 5}
    response = client.post("/v1/context", headers={**headers, "X-Request-ID": request_id}, json=body)
    assert response.status_code == 200, response.text
    return response.json()


def test_feedback_teaches_a_stricter_entity_match_cutoff(served):
    client, headers, services = served
    for i, ((known, lookalike), topic) in enumerate(zip(COMPANIES, TOPICS)):
        pack = _ask(client, headers, f"look-{i}", f"{lookalike} {topic} problem")
        wrong = [e["entity_id"] for e in pack["entities"]]
        assert wrong, f"{lookalike!r} should fuzzily match {known!r} before tuning"
        labels = [{"doc_id": f"kb:{topic.replace(' ', '-')}-{kind}.md", "label": "relevant"} for kind in KB_KINDS]
        labels += [{"doc_id": f"accounts:{i}-{n}", "label": "wrong_entity", "entity_id": wrong[0]} for n in range(2)]
        body = {"request_id": f"look-{i}", "principal": {"id": "sam", "roles": ["support"]}, "labels": labels}
        assert client.post("/v1/feedback", headers=headers, json=body).status_code == 200
        _ask(client, headers, f"name-{i}", f"{known} renewal terms")  # the exact name: its records are the answer
        labels = [{"doc_id": f"accounts:{i}-{n}", "label": "relevant"} for n in range(2)]
        body = {"request_id": f"name-{i}", "principal": {"id": "sam", "roles": ["support"]}, "labels": labels}
        assert client.post("/v1/feedback", headers=headers, json=body).status_code == 200
    result = run_tune(services)
    assert result["entity_match"]["cutoff"] is not None and result["entity_match"]["cutoff"] > 92, result["entity_match"]
    assert result["held_out"]["after"]["ndcg@10"] > result["held_out"]["before"]["ndcg@10"], result["held_out"]
    held = result["entity_match"]["held_out_ndcg@10"]
    assert held["chosen"] > held["registry_cutoff"], held  # the cutoff itself helped, on requests it never saw
    assert result["applied"] and load_state(services.settings.tuning_path).entity_match_cutoff == result["entity_match"]["cutoff"]
    # the records name their company by its only alias: a split has nothing to leave behind, a steward decides
    assert {c["status"] for c in result["entity_corrections"]} == {"skipped"}
    # the serving retriever uses the cutoff at once: the look-alike no longer links, the exact name still does
    assert _ask(client, headers, "after-1", f"{COMPANIES[0][1]} {TOPICS[0]} problem")["entities"] == []
    assert [e["name"] for e in _ask(client, headers, "after-2", f"{COMPANIES[0][0]} renewal")["entities"]] == [COMPANIES[0][0]]
