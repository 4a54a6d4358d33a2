"""Redaction policies: detectors with checksums, roles that may see raw values, applied when served on
every endpoint, never searchable, never an entity name."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.keys import KeyStore
from api.services import Services
from core.config import Settings
from core.errors import ManifestError
from governance.redaction import RedactionRule, redact
from ingest.manifest import load_manifest
from ingest.pipeline import ingest_manifests

EMAIL = "lena.fischer@umbrella-logistics.example"
PHONE = "+31 20 794 1234"
ACCOUNT = "ACCT-778812"
ROWS = [
    ("P-1", "Lena Fischer", EMAIL, PHONE, f"Lena Fischer runs the Umbrella Logistics onboarding. Reach her at {EMAIL} "
     f"or {PHONE}. Billing account {ACCOUNT} is on net-30 terms."),
    ("P-2", "Tom Berger", "tom.berger@globex.example", "+1 415 555 0134",
     "Tom Berger negotiates the Globex expansion and prefers calls in the morning."),
]
MANIFEST = """source: contacts
kind: records
path: contacts.csv
id_field: id
title_field: name
text_fields: [notes]
entity_fields:
  person: [name, email]
acl:
  default: [support, hr]
{redact}"""
POLICY = """redact:
  - detect: email
    roles: [hr]
  - detect: phone
    roles: [hr]
    region: NL
  - detect: pattern
    name: account
    pattern: 'ACCT-\\d{6}'
"""


def test_detectors_use_checksums_and_exempt_allowed_roles():
    rules = [RedactionRule("email", "email", ("hr",)), RedactionRule("iban", "iban", ("finance",)),
             RedactionRule("card", "card", ()), RedactionRule("phone", "phone", (), region="NL")]
    text = ("Mail a.b@c.example, IBAN NL91 ABNA 0417 1643 00 (not NL91 ABNA 0417 1643 01), "
            "card 4111 1111 1111 1111 (not 4111 1111 1111 1112), call 020 794 1234, order 1234.")
    hidden = redact(text, rules, {"role:support"})
    assert "a.b@c.example" not in hidden.text and "NL91 ABNA 0417 1643 00" not in hidden.text
    assert "NL91 ABNA 0417 1643 01" in hidden.text and "4111 1111 1111 1112" in hidden.text
    assert "4111 1111 1111 1111" not in hidden.text and "020 794 1234" not in hidden.text
    assert [name for *_, name in hidden.spans] == ["email", "iban", "card", "phone"]
    assert text[hidden.spans[0][0]:hidden.spans[0][1]] == "a.b@c.example"  # spans point into the original
    shown = redact(text, rules, {"role:hr", "role:finance"})
    assert "a.b@c.example" in shown.text and "NL91 ABNA 0417 1643 00" in shown.text
    assert "4111 1111 1111 1111" not in shown.text  # roles: [] means nobody


def test_a_bad_policy_is_refused_naming_the_key(tmp_path):
    (tmp_path / "contacts.csv").write_text("id,name,email,phone,notes\n", encoding="utf-8")
    for bad, words in (("  - detect: pattern\n", "pattern"), ("  - detect: ssn\n", "redact"),
                       ("  - detect: pattern\n    pattern: '(unclosed'\n", "not a valid regular expression"),
                       ("  - detect: email\n    roles: ['hr, exec']\n", "invalid role")):
        (tmp_path / "m.yaml").write_text(MANIFEST.format(redact="redact:\n" + bad), encoding="utf-8")
        with pytest.raises(ManifestError, match=words):
            load_manifest(tmp_path / "m.yaml")


@pytest.fixture()
def served(tmp_path, encoder):
    import csv

    with (tmp_path / "contacts.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "name", "email", "phone", "notes"])
        writer.writerows(ROWS)
    manifest = tmp_path / "contacts.yaml"
    manifest.write_text(MANIFEST.format(redact=""), encoding="utf-8")
    services = Services(Settings(data_dir=tmp_path / "data"))
    services.__dict__["encoder"] = encoder

    def ingest(policy: str):
        manifest.write_text(MANIFEST.format(redact=policy), encoding="utf-8")
        return ingest_manifests([load_manifest(manifest)], services.ingest_context())

    key = KeyStore(services.settings.keys_path).create(scopes=("context",), roles=("support", "hr"), principals=("*",))
    with TestClient(create_app(services.settings, services=services)) as client:
        yield client, {"Authorization": f"Bearer {key}"}, ingest
    services.store.close()


def _everything(client, headers, roles):
    principal = {"id": "sam", "roles": roles}
    bodies = []
    for query in ("Lena Fischer contact details", EMAIL, f"billing account {ACCOUNT}"):
        for path in ("/v1/context", "/v1/search"):
            response = client.post(path, headers=headers, json={"query": query, "principal": principal})
            assert response.status_code == 200, response.text
            bodies.append(response)
    params = {"principal_id": "sam", "role": roles}
    bodies.append(client.get("/v1/documents/contacts:P-1", headers=headers, params=params))
    bodies.append(client.get("/v1/entities", headers=headers, params={**params, "q": "lena"}))
    bodies.append(client.get("/v1/entities", headers=headers, params={**params, "q": "umbrella-logistics"}))
    return bodies


def test_a_redacted_value_reaches_no_role_without_access_through_any_endpoint(served):
    client, headers, ingest = served
    ingest("")
    assert any(EMAIL in r.text for r in _everything(client, headers, ["support"]))  # before: the raw value is served
    report = ingest(POLICY)
    assert report.updated == 2  # a policy change re-processes the source
    for response in _everything(client, headers, ["support"]):
        assert EMAIL not in response.text and PHONE not in response.text and ACCOUNT not in response.text
    pack = client.post("/v1/context", headers=headers,
                       json={"query": "Lena Fischer contact details", "principal": {"id": "sam", "roles": ["support"]}}).json()
    lena = next(p for p in pack["passages"] if p["doc_id"] == "contacts:P-1")
    assert "[REDACTED:email]" in lena["text"] and "[REDACTED:account]" in lena["text"]
    assert lena["redactions"] == 3 and pack["usage"]["redactions"] >= 3
    assert lena["content_hashes"] == []  # a hash would confirm a guessed value
    assert "[1]" in pack["context"] and "[REDACTED:email]" in pack["context"]
    hr = [r.text for r in _everything(client, headers, ["hr"])]
    assert any(EMAIL in t for t in hr) and any(PHONE in t for t in hr)
    assert not any(ACCOUNT in t for t in hr)  # roles: [] — nobody sees it raw


def _sparse_hits(services, text):
    from retrieval.search import SearchPlan, encode_query, search_chunks

    vectors = encode_query(services.encoder, text)
    return search_chunks(services.store, vectors, acl_tokens=("role:hr",), limit=5, plan=SearchPlan(mode="sparse"))


def test_the_index_never_holds_a_raw_value(served):
    client, headers, ingest = served
    services = client.app.state.services
    ingest("")
    assert [h.payload["doc_id"] for h in _sparse_hits(services, "778812")] == ["contacts:P-1"]
    ingest(POLICY)
    assert _sparse_hits(services, "778812") == []  # nobody can search by a redacted value, not even hr
    chunk = services.store.document_chunks("contacts:P-1", acl_tokens=None)[0]
    assert EMAIL in chunk.payload["text"]  # stored raw, for the roles allowed to see it
    entities = client.get("/v1/entities", headers=headers, params={"principal_id": "h", "role": ["hr"], "q": "fischer@"})
    assert entities.status_code == 200 and EMAIL not in entities.text  # never an entity alias, even for hr


def test_the_vectors_never_see_a_raw_value(served, encoder, monkeypatch):
    """Ingest hands the chunker's token ids to the encoder; a chunk masked after chunking must be encoded
    from its masked text, never from the ids of the raw one."""
    client, _, ingest = served
    calls = []
    real = encoder.encode_passages

    def spy(texts, token_ids=None):  # noqa: ANN001, ANN202
        calls.append((list(texts), token_ids))
        return real(texts, token_ids)

    monkeypatch.setattr(encoder, "encode_passages", spy)
    ingest(POLICY)
    (texts, token_ids), = calls
    assert token_ids is not None and any(ids is not None for ids in token_ids)  # ids are handed over
    rows = encoder._rows(texts, token_ids)
    assert rows == [e.ids for e in encoder._embed_tok.encode_batch(texts)]  # what the model reads is the text
    model_text = encoder._count_tok.decode_batch([list(r) for r in rows])
    for raw in ("fischer @ umbrella", "778812", "794 1234"):  # as the tokenizer decodes the raw values
        assert raw not in " ".join(model_text)
