"""``stitch eval entities``: a tiny DeepMatcher-layout set written to tmp."""

from __future__ import annotations

import csv

import pytest

from core.errors import ConfigurationError
from evaluation.entities import format_entities_table, run_deepmatcher_eval, run_entities_eval

LEFT = [
    "acme rocket skates model rs-200", "globex turbo blender gx-9000", "initech stapler red st-11",
    "umbrella corp hazmat suit hz-4", "wayne tech grapple gun wt-77", "stark arc reactor mini ar-1",
    "cyberdyne neural chip cd-101", "tyrell replicant lamp ty-5", "wonka chocolate bar wc-3", "soylent green pack sg-12",
]
RIGHT = [
    "rocket skates by acme rs200", "gx9000 turbo blender globex", "red stapler initech st11",
    "hazmat suit umbrella hz4", "grapple gun wayne wt77", "mini arc reactor stark ar1",
    "neural chip cyberdyne cd101", "replicant lamp tyrell ty5", "chocolate bar wonka wc3", "green pack soylent sg12",
]


def _write(path, header, rows):
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


@pytest.fixture()
def tiny_set(tmp_path):
    _write(tmp_path / "tableA.csv", ["id", "title", "price"], [(i, t, 10 + i) for i, t in enumerate(LEFT)])
    _write(tmp_path / "tableB.csv", ["id", "title", "price"], [(i, t, 10 + i) for i, t in enumerate(RIGHT)])
    n = len(LEFT)
    for name in ("train", "valid", "test"):
        rows = [(i, i, 1) for i in range(n)] + [(i, (i + k) % n, 0) for i in range(n) for k in (1, 3)]
        _write(tmp_path / f"{name}.csv", ["ltable_id", "rtable_id", "label"], rows)
    return tmp_path


def test_tiny_deepmatcher_set_reports_pairwise_scores(tiny_set):
    result = run_deepmatcher_eval(tiny_set, use_embeddings=False)
    assert result["test_pairs"] == 30 and result["train_data_used"] is True
    assert result["f1"] >= 0.9 and 0 <= result["precision"] <= 1 and 0 <= result["recall"] <= 1
    assert "f1" in format_entities_table(result)


def test_a_directory_without_tables_is_a_configuration_error(tmp_path):
    with pytest.raises(ConfigurationError, match="tableA.csv"):
        run_entities_eval(tmp_path)
