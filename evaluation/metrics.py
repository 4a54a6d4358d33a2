"""Ranking metrics with trec_eval's definitions (linear gain nDCG, binary relevance > 0).

Pure Python so tests and the CLI do not pay a JIT warm-up; cross-checked against ranx.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

Qrels = Mapping[str, Mapping[str, int]]  # query id -> doc id -> graded relevance
Run = Mapping[str, Sequence[str]]  # query id -> ranked doc ids (best first)


def ndcg_at(ranking: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    """nDCG@k with gain = relevance grade (trec_eval ``ndcg_cut``)."""
    dcg = sum(relevant.get(doc, 0) / math.log2(i + 2) for i, doc in enumerate(ranking[:k]))
    ideal = sorted((g for g in relevant.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def recall_at(ranking: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    """Share of relevant documents found in the top ``k``."""
    wanted = {d for d, g in relevant.items() if g > 0}
    return len(wanted & set(ranking[:k])) / len(wanted) if wanted else 0.0


def mrr_at(ranking: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    """Reciprocal rank of the first relevant document within the top ``k``."""
    for i, doc in enumerate(ranking[:k]):
        if relevant.get(doc, 0) > 0:
            return 1.0 / (i + 1)
    return 0.0


def average_precision(ranking: Sequence[str], relevant: Mapping[str, int]) -> float:
    """Average precision over the whole ranking (trec_eval ``map`` for that depth)."""
    wanted = {d for d, g in relevant.items() if g > 0}
    if not wanted:
        return 0.0
    hits, total = 0, 0.0
    for i, doc in enumerate(ranking):
        if doc in wanted:
            hits += 1
            total += hits / (i + 1)
    return total / len(wanted)


def evaluate_run(qrels: Qrels, run: Run) -> dict[str, float]:
    """Mean nDCG@10, Recall@10, Recall@100, MRR@10 and MAP over the queries that have judgements."""
    scored = [q for q in qrels if any(g > 0 for g in qrels[q].values())]
    if not scored:
        return {"ndcg@10": 0.0, "recall@10": 0.0, "recall@100": 0.0, "mrr@10": 0.0, "map": 0.0}
    sums = {"ndcg@10": 0.0, "recall@10": 0.0, "recall@100": 0.0, "mrr@10": 0.0, "map": 0.0}
    for qid in scored:
        ranking, rel = list(run.get(qid, ())), qrels[qid]
        sums["ndcg@10"] += ndcg_at(ranking, rel, 10)
        sums["recall@10"] += recall_at(ranking, rel, 10)
        sums["recall@100"] += recall_at(ranking, rel, 100)
        sums["mrr@10"] += mrr_at(ranking, rel, 10)
        sums["map"] += average_precision(ranking[:100], rel)
    return {name: round(total / len(scored), 4) for name, total in sums.items()}


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (``pct`` in 0..100) of ``values``; 0.0 when empty."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]
