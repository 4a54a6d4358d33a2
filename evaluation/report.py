"""Reports of ``stitch eval all``: report.json, report.md and a PNG plot (quality per search mode,
latency distribution)."""

from __future__ import annotations

import json
from pathlib import Path


def _fmt(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _retrieval_rows(result: dict) -> list[str]:
    rows = ["| mode | Recall@3 | Recall@10 | nDCG@10 | search p50 ms | search p95 ms |", "|---|---|---|---|---|---|"]
    for mode, m in result["retrieval"]["modes"].items():
        rows.append(f"| {mode} | {_fmt(m['recall@3'])} | {_fmt(m['recall@10'])} | {_fmt(m['ndcg@10'])} | "
                    f"{_fmt(m['latency_ms']['p50'])} | {_fmt(m['latency_ms']['p95'])} |")
    return rows


def _role_rows(result: dict) -> list[str]:
    primary = result["retrieval"]["primary_mode"]
    rows = [f"| roles ({primary}) | queries | Recall@10 | nDCG@10 |", "|---|---|---|---|"]
    for role, r in result["retrieval"]["modes"][primary]["per_role"].items():
        rows.append(f"| {role} | {r['queries']} | {_fmt(r['recall@10'])} | {_fmt(r['ndcg@10'])} |")
    return rows


def _entity_line(er: dict) -> str:
    if not er.get("available"):
        return f"not available ({er.get('reason', 'no API')})"
    return (f"pairwise P {_fmt(er['precision'])}  R {_fmt(er['recall'])}  F1 {_fmt(er['f1'])}  "
            f"({er['distinct_names']} distinct names, {er['gold_entities']} gold entities, "
            f"{er['predicted_entities']} predicted)")


SUMMARY_ROWS = (
    ("single_recall@10", "Recall@10, single-system questions"),
    ("cross_recall@10", "Recall@10, cross-system questions (customer named by acronym/typo)"),
    ("stitching_share", "share of multi-system questions whose pack cites ≥ 2 gold systems"),
    ("contract_recall@10", "Recall@10, contract questions (same-template MSAs)"),
    ("contract_page_cited", "contract page cited where the clause is"),
    ("entity_precision", "entity resolution over labelled mentions: precision"),
    ("entity_recall", "entity resolution over labelled mentions: recall"),
    ("dates_right", "documents dated by their own date"),
    ("leaks", "leaks"),
)


def _summary_rows(result: dict) -> list[str]:
    summary = result.get("summary") or {}
    rows = ["| measure | value |", "|---|---|"]
    return rows + [f"| {label} | {_fmt(summary.get(key)) if summary.get(key) is not None else 'n/a'} |"
                   for key, label in SUMMARY_ROWS]


def format_suite_report(result: dict) -> str:
    """Human-readable summary (also the body of report.md)."""
    corpus, st, ac = result["corpus"], result["stitching"], result["access_control"]
    lines = [
        f"# Stitch evaluation: {corpus.get('path', 'fixtures')}",
        "",
        *_summary_rows(result),
        "",
        f"Corpus: {corpus['documents']} documents from {', '.join(corpus['manifests'])} "
        f"({corpus['chunks']} chunks, {corpus['invisible']} invisible, {corpus['failed']} failed, "
        f"ingested in {corpus['ingest_seconds']:.1f} s). Queries: {result['queries']['total']} "
        f"({result['queries']['scored']} with a visible answer, "
        f"{result['queries']['hidden_best_answer']} whose best answer the asking role cannot see).",
        "",
        "## Retrieval (document level, gold queries, each asked with its own roles)",
        "",
        *_retrieval_rows(result),
        "",
        *_role_rows(result),
        "",
        "## Stitching",
        "",
        f"Multi-system questions whose context pack cites gold documents from at least 2 systems: "
        f"{st['with_2plus_gold_sources']} / {st['multi_system_questions']} ({_fmt(st['share'])}); "
        f"citing every gold system: {st.get('with_all_gold_sources', 0)} / {st['multi_system_questions']}. "
        f"Context latency p50 {_fmt(st['context_latency_ms']['p50'])} ms, "
        f"p95 {_fmt(st['context_latency_ms']['p95'])} ms.",
        "",
        "## Access control",
        "",
        f"Leaks: **{ac['leaks']}** over {ac['requests_checked']} context packs and every search result "
        f"({ac['canaries']} canaries probed with {ac['probe_role_sets']} role sets).",
        *[f"- {x}" for x in ac["leak_details"][:20]],
        "",
        "## Entity resolution",
        "",
        _entity_line(result["entity_resolution"]),
        "",
        f"Total run time {result['seconds']:.1f} s.",
    ]
    return "\n".join(lines)


def _plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    modes = result["retrieval"]["modes"]
    names = list(modes)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    width = 0.27
    xs = list(range(len(names)))
    for offset, metric in ((-width, "recall@3"), (0.0, "recall@10"), (width, "ndcg@10")):
        left.bar([x + offset for x in xs], [modes[n][metric] for n in names], width, label=metric)
    left.set_xticks(xs, names)
    left.set_ylim(0, 1.2)
    left.set_yticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    left.set_title("Quality per search mode (gold queries)")
    left.legend(loc="upper center", ncol=3, fontsize=8)
    series = [modes[n]["latencies_ms"] for n in names] + [result["stitching"]["context_latencies_ms"]]
    right.boxplot(series, showfliers=True)
    right.set_xticks(range(1, len(series) + 1), [f"search\n{n}" for n in names] + ["context\n(primary)"])
    right.set_ylabel("ms")
    right.set_title("Latency per request")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_reports(result: dict, out: Path) -> dict:
    """Write report.json, report.md and quality_latency.png into ``out``; return their paths."""
    out.mkdir(parents=True, exist_ok=True)
    files = {"json": str(out / "report.json"), "markdown": str(out / "report.md"),
             "plot": str(out / "quality_latency.png")}
    _plot(result, Path(files["plot"]))
    markdown = format_suite_report(result) + "\n\n![quality and latency](quality_latency.png)\n"
    Path(files["markdown"]).write_text(markdown, encoding="utf-8")
    Path(files["json"]).write_text(json.dumps({**result, "files": files}, indent=2, ensure_ascii=False), encoding="utf-8")
    return files
