"""``stitch eval all`` over the fixture corpus: no leaks, quality above measured floors, reports written."""

from __future__ import annotations

import json

import pytest

from evaluation.suite import FIXTURES, AclOracle, canary_owners, leaks_in, run_all
from ingest.manifest import load_manifest

# Floors sit a little below the numbers measured on 2026-11-23 (docs/fixtures.md).
FLOORS = {"recall@10": 0.95, "ndcg@10": 0.88, "recall@3": 0.80}
STITCHING_FLOOR = 0.85


@pytest.fixture(scope="module")
def suite(tmp_path_factory, encoder):
    out = tmp_path_factory.mktemp("eval-report")
    return run_all(out, modes=("hybrid",), encoder=encoder), out


def test_no_document_or_canary_leaks_for_any_role(suite):
    result, _ = suite
    access = result["access_control"]
    assert access["leaks"] == 0, access["leak_details"]
    assert access["requests_checked"] >= 46 + 8 * 8


def test_retrieval_quality_and_stitching_stay_above_floors(suite):
    result, _ = suite
    assert result["corpus"]["failed"] == 0 and result["corpus"]["documents"] == 74
    hybrid = result["retrieval"]["modes"]["hybrid"]
    for metric, floor in FLOORS.items():
        assert hybrid[metric] >= floor, (metric, hybrid[metric])
    assert result["stitching"]["share"] >= STITCHING_FLOOR, result["stitching"]["questions"]


def test_reports_are_written(suite):
    result, out = suite
    saved = json.loads((out / "report.json").read_text())
    assert saved["access_control"]["leaks"] == 0
    assert "Recall@10" in (out / "report.md").read_text()
    assert (out / "quality_latency.png").read_bytes()[:4] == b"\x89PNG"
    er = result["entity_resolution"]
    assert er["available"] is False or 0.0 <= er["f1"] <= 1.0


def test_leak_check_flags_invisible_documents_and_canaries():
    oracle = AclOracle([load_manifest(p) for p in sorted((FIXTURES / "manifests").glob("*.yaml"))])
    owners = canary_owners(FIXTURES)
    payload = {"passages": [{"doc_id": "wiki:finance/q3-revenue-forecast.md", "text": "FIN-CANARY-7731"}]}
    assert leaks_in(payload, ("sales",), oracle, owners) == ["FIN-CANARY-7731", "wiki:finance/q3-revenue-forecast.md"]
    assert leaks_in(payload, ("finance",), oracle, owners) == []
    assert leaks_in({"doc_id": "wiki:drafts/unreleased-pricing.md"}, ("exec",), oracle, owners)
    assert leaks_in({"text": "XYZ-CANARY-0000"}, ("exec",), oracle, owners) == ["XYZ-CANARY-0000"]
