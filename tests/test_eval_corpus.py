"""The seeded corpus generator (``stitch eval generate``) and ``stitch eval all --corpus`` on its output."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from core.errors import InputError
from evaluation.corpus import generate_corpus
from evaluation.suite import AclOracle, load_queries, run_all
from ingest.manifest import load_manifest

ROOT = Path(__file__).resolve().parent.parent


def _gold(root: Path) -> tuple[list, list[dict]]:
    queries = load_queries(root / "gold" / "queries.jsonl")
    with (root / "gold" / "entities.csv").open(newline="", encoding="utf-8") as handle:
        return queries, list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus") / "seed7"
    return root, generate_corpus(root, seed=7, organisations=8)


def test_same_seed_same_corpus_other_seed_other_names(tmp_path, small):
    root, summary = small
    again = generate_corpus(tmp_path / "again", seed=7, organisations=8)
    other = generate_corpus(tmp_path / "other", seed=8, organisations=8)
    assert (root / "gold" / "queries.jsonl").read_text() == (tmp_path / "again" / "gold" / "queries.jsonl").read_text()
    assert again.documents == summary.documents
    names = {r["entity_key"] for r in _gold(root)[1]}
    assert names != {r["entity_key"] for r in _gold(tmp_path / "other")[1]}
    assert other.seed == 8


def test_five_systems_and_every_gold_document_exists_and_is_visible_per_the_manifests(small):
    root, summary = small
    manifests = [load_manifest(p) for p in sorted((root / "manifests").glob("*.yaml"))]
    assert sorted(m.source for m in manifests) == ["contracts", "crm", "email", "tickets", "wiki"]
    oracle = AclOracle(manifests)  # derived from the manifests alone, not from the generator's bookkeeping
    queries, mentions = _gold(root)
    assert {q.category for q in queries} >= {"single", "cross", "contract"}
    for q in queries:
        assert all(oracle.visible(d, q.roles) for d in q.relevant), q
        assert not any(oracle.visible(d, q.roles) for d in q.hidden_best), q
    assert all(r["doc_id"] in oracle.roles for r in mentions)
    contract_pages = [q for q in queries if q.category == "contract" and q.pages]
    assert contract_pages and all(p >= 1 for q in contract_pages for _, pages in q.pages for p in pages)
    assert any(d.endswith(".pdf") for d in oracle.roles) and any(d.endswith(".docx") for d in oracle.roles)
    for row in map(json.loads, (root / "gold" / "canaries.jsonl").read_text().splitlines()):
        assert row["doc_id"] in oracle.roles


def test_names_vary_across_systems(small):
    root, _ = small
    _, mentions = _gold(root)
    surfaces: dict[str, set[str]] = {}
    for row in mentions:
        surfaces.setdefault(row["entity_key"], set()).add(row["mention"])
    customers = [k for k, s in surfaces.items() if k.startswith("org:") and len(s) >= 3]
    assert customers, surfaces
    acronyms = [m for s in surfaces.values() for m in s if m.isupper() and 2 <= len(m) <= 4]
    assert acronyms


def test_refuses_to_overwrite_a_folder_that_is_not_a_generated_corpus(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="not empty"):
        generate_corpus(tmp_path, seed=1)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_eval_all_on_a_generated_corpus_reports_issue_11_measures(small, tmp_path, encoder):
    root, summary = small
    result = run_all(tmp_path / "report", corpus=root, modes=("hybrid",), encoder=encoder)
    assert result["corpus"]["failed"] == 0
    assert result["corpus"]["documents"] == sum(summary.documents.values())
    assert result["access_control"]["leaks"] == 0, result["access_control"]["leak_details"]
    s = result["summary"]
    for key in ("single_recall@10", "cross_recall@10", "stitching_share", "contract_recall@10"):
        assert 0.0 <= s[key] <= 1.0, (key, s)
    assert s["dates_right"] is not None and "measure | value" in (tmp_path / "report" / "report.md").read_text()


def test_cli_generate_and_bad_corpus(tmp_path):
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    stitch = [sys.executable, "-m", "api.cli"]
    done = subprocess.run([*stitch, "eval", "generate", "--seed", "3", "--orgs", "5", "--out", str(tmp_path / "c"),
                           "--json"], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["seed"] == 3
    bad = subprocess.run([*stitch, "eval", "all", "--corpus", str(tmp_path / "nope")], capture_output=True,
                         text=True, env=env, cwd=ROOT, timeout=300)
    assert bad.returncode == 2 and "not a folder" in bad.stderr
