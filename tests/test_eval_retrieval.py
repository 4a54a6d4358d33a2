"""`stitch eval retrieval`: metrics match trec_eval definitions; the harness ingests and scores a tiny BEIR set."""

from __future__ import annotations

import json
import math

import pytest

from core.config import Settings
from evaluation.metrics import average_precision, evaluate_run, mrr_at, ndcg_at, percentile, recall_at

CORPUS = [
    ("d1", "Photosynthesis", "Plants convert sunlight, water and carbon dioxide into glucose and oxygen."),
    ("d2", "Mitochondria", "The mitochondrion produces ATP through oxidative phosphorylation in cells."),
    ("d3", "Volcanoes", "Magma rises through the crust and erupts as lava from a volcano."),
    ("d4", "Glaciers", "Glaciers carve valleys as compacted snow turns to ice and flows downhill."),
    ("d5", "Vaccines", "Vaccines train the immune system to recognise a pathogen without causing disease."),
    ("d6", "Tides", "The gravitational pull of the moon causes ocean tides twice a day."),
]
QUERIES = {"q1": "how do plants make glucose from sunlight", "q2": "what causes ocean tides",
           "q3": "how is ATP produced in the cell", "q9": "training only query about lava"}


def test_metrics_follow_trec_eval_definitions():
    rel = {"a": 1, "b": 1}
    assert ndcg_at(["a", "x", "b"], rel, 10) == pytest.approx((1 + 1 / 2) / (1 + 1 / math.log2(3)))
    assert ndcg_at(["x", "y"], rel, 10) == 0.0
    assert recall_at(["a", "x", "b"], rel, 2) == 0.5
    assert mrr_at(["x", "b"], rel, 10) == 0.5
    assert average_precision(["a", "x", "b"], rel) == pytest.approx((1 + 2 / 3) / 2)
    run = {"q1": ["a", "b"], "q2": ["z"]}
    result = evaluate_run({"q1": rel, "q2": {"c": 1}}, run)
    assert result["ndcg@10"] == 0.5 and result["recall@100"] == 0.5 and result["mrr@10"] == 0.5
    assert percentile([5, 1, 3, 2, 4], 50) == 3 and percentile([], 95) == 0.0


def _write_beir(root):
    (root / "qrels").mkdir(parents=True)
    with (root / "corpus.jsonl").open("w") as handle:
        for doc_id, title, text in CORPUS:
            handle.write(json.dumps({"_id": doc_id, "title": title, "text": text, "metadata": {}}) + "\n")
    with (root / "queries.jsonl").open("w") as handle:
        for qid, text in QUERIES.items():
            handle.write(json.dumps({"_id": qid, "text": text}) + "\n")
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td6\t1\nq3\td2\t1\n")
    (root / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\nq9\td3\t1\n")


def test_eval_ingests_a_beir_set_and_ranks_the_right_documents(tmp_path, encoder):
    from evaluation.retrieval import format_retrieval_table, run_retrieval_eval

    _write_beir(tmp_path / "tiny")
    result = run_retrieval_eval(tmp_path / "tiny", data_dir=tmp_path / "scratch", settings=Settings(data_dir=tmp_path))
    assert result["queries"] == 3
    assert result["corpus"]["documents"] == len(CORPUS) and result["corpus"]["failed"] == 0
    assert result["metrics"]["ndcg@10"] == 1.0 and result["metrics"]["recall@100"] == 1.0
    assert result["latency_ms"]["search"]["p95"] >= result["latency_ms"]["search"]["p50"] > 0
    assert result["context_pack"]["doc_recall"] == 1.0 and 0 < result["context_pack"]["mean_tokens"] <= 2000
    assert "nDCG@10" in format_retrieval_table(result)
    json.dumps(result)
    again = run_retrieval_eval(tmp_path / "tiny", data_dir=tmp_path / "scratch", settings=Settings(data_dir=tmp_path),
                               split="train")
    assert again["corpus"]["reused"] == len(CORPUS)  # the cached index is reused, not rebuilt
    assert again["queries"] == 1 and again["metrics"]["mrr@10"] == 1.0


def test_eval_names_what_is_missing(tmp_path):
    from core.errors import InputError
    from evaluation.retrieval import run_retrieval_eval

    (tmp_path / "corpus.jsonl").write_text("")
    with pytest.raises(InputError, match="queries.jsonl"):
        run_retrieval_eval(tmp_path)


def test_cli_prints_one_json_object(tmp_path, encoder, monkeypatch):
    from typer.testing import CliRunner

    from api.cli import app

    _write_beir(tmp_path / "tiny")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["eval", "retrieval", str(tmp_path / "tiny"), "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    assert payload["metrics"]["ndcg@10"] == 1.0
