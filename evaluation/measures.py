"""Issue 11's measures over any corpus directory: the summary table, document dates, corpus checks."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from core.errors import InputError


def check_corpus(root: Path) -> Path:
    """``root`` must hold ``manifests/*.yaml`` and ``gold/queries.jsonl`` (fixtures/ or a generated corpus)."""
    if not root.is_dir():
        raise InputError(f"--corpus {root}: not a folder")
    missing = [name for name, ok in (("manifests/*.yaml", any((root / "manifests").glob("*.yaml"))),
                                     ("gold/queries.jsonl", (root / "gold" / "queries.jsonl").is_file()),
                                     ("gold/canaries.jsonl", (root / "gold" / "canaries.jsonl").is_file())) if not ok]
    if missing:
        raise InputError(f"--corpus {root}: missing {', '.join(missing)} (expected the layout of fixtures/)")
    return root


def document_dates(store: object, gold: Path) -> dict | None:
    """Share of documents whose stored ``updated_at`` is the document's own date (``gold/dates.jsonl``)."""
    if not gold.is_file():
        return None
    rows = [json.loads(x) for x in gold.read_text(encoding="utf-8").splitlines() if x.strip()]
    right: Counter[str] = Counter()
    total: Counter[str] = Counter()
    wrong = []
    for row in rows:
        chunks = store.document_chunks(row["doc_id"], acl_tokens=None, limit=1)
        if not chunks:
            continue
        stored = (chunks[0].payload.get("updated_at") or "")[:10]
        total[row["source"]] += 1
        if stored == row["date"]:
            right[row["source"]] += 1
        else:
            wrong.append(f"{row['doc_id']}: {stored or None} (own date {row['date']}, {row['source']})")
    n = sum(total.values())
    return {"documents": n, "right": sum(right.values()),
            "share": round(sum(right.values()) / n, 4) if n else None,
            "by_source": {s: {"documents": total[s], "right": right[s]} for s in sorted(total)},
            "wrong": wrong[:20]}


def issue11_summary(result: dict) -> dict:
    """The measures of issue 11's table, from a ``run_all`` result (None where the corpus has no such gold)."""
    primary = result["retrieval"]["modes"][result["retrieval"]["primary_mode"]]
    kinds = primary.get("per_kind", {})
    er = result.get("entity_resolution") or {}
    pages = result["stitching"].get("contract_pages") or {}
    dates = result.get("dates") or {}
    return {
        "single_recall@10": kinds.get("single", {}).get("recall@10"),
        "cross_recall@10": kinds.get("cross", {}).get("recall@10"),
        "stitching_share": result["stitching"]["share"],
        "contract_recall@10": kinds.get("contract", {}).get("recall@10"),
        "contract_page_cited": pages.get("share"),
        "entity_precision": er.get("precision"),
        "entity_recall": er.get("recall"),
        "dates_right": dates.get("share"),
        "leaks": result["access_control"]["leaks"],
    }
