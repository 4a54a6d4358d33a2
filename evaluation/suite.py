"""``stitch eval all``: ingest the fixture corpus into a scratch data dir and report retrieval quality,
stitching, access-control leaks and entity resolution against the gold sets in ``fixtures/gold``.

Visibility for the leak check is computed here from the manifests' ACL rules, independently of the
ingest code, so a bug in ``ingest.sources`` or the store filter shows up as a leak instead of being
copied into the expected answer.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path

from api.render import context_pack_json
from api.services import Services
from core.config import Settings
from core.models import Principal
from evaluation.measures import check_corpus, document_dates, issue11_summary
from evaluation.metrics import ndcg_at, percentile, recall_at
from evaluation.report import format_suite_report, write_reports
from ingest.manifest import Manifest, load_manifest
from ingest.pipeline import ingest_manifests
from retrieval.context import ContextRequest, Retriever

__all__ = ["FIXTURES", "format_suite_report", "run_all", "AclOracle"]

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
MODES = ("hybrid", "dense", "sparse")
PROBE_ROLE_SETS: tuple[tuple[str, ...], ...] = (
    (), ("sales",), ("support",), ("finance",), ("legal",), ("hr",), ("exec",), ("engineering",),
)
CANARY = re.compile(r"\b[A-Z]+-CANARY-\d{4}\b")
EVAL_USER = "eval-user"


@dataclass(frozen=True)
class GoldQuery:
    """One question, the roles asking it, and the visible documents that answer it."""

    id: str
    question: str
    roles: tuple[str, ...]
    relevant: tuple[str, ...]
    hidden_best: tuple[str, ...] = ()
    kind: str = ""                                   # single | cross | contract | … ("" → from gold systems)
    pages: tuple[tuple[str, tuple[int, ...]], ...] = ()  # contract clause: (doc id, pages where it is)

    @property
    def role_label(self) -> str:
        return "+".join(self.roles) or "public"

    @property
    def gold_sources(self) -> set[str]:
        return {d.split(":", 1)[0] for d in self.relevant}

    @property
    def category(self) -> str:
        """The issue-11 question class; fixtures without ``kind`` are single/cross by their gold systems."""
        return self.kind or ("cross" if len(self.gold_sources) >= 2 else "single")


def load_queries(path: Path) -> list[GoldQuery]:
    """``queries.jsonl``: id, question, roles, relevant, optional hidden_best, kind, pages {doc: [n]}."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [
        GoldQuery(r["id"], r["question"], tuple(r["roles"]), tuple(r["relevant"]), tuple(r.get("hidden_best", ())),
                  r.get("kind", ""), tuple((d, tuple(p)) for d, p in (r.get("pages") or {}).items()))
        for r in rows
    ]


# --- independent ACL oracle -------------------------------------------------------------------


def _glob_regex(pattern: str) -> re.Pattern[str]:
    """The documented rule (README "Manifests"), written independently of core.pathmatch: gitignore
    syntax anchored at the source root; a pattern matching a folder covers everything inside it,
    except that a last segment of just ``*`` matches direct entries only."""
    out, i, pattern = "", 0, pattern.lstrip("/")
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[" and "]" in pattern[i + 2:]:
            end = pattern.index("]", i + 2)
            body = pattern[i + 1:end]
            out, i = out + "[" + ("^" + body[1:] if body[0] in "!^" else body) + "]", end + 1
        elif pattern[i] == "\\" and i + 1 < len(pattern):
            out, i = out + re.escape(pattern[i + 1]), i + 2
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    if pattern == "*" or pattern.endswith("/*"):  # a last segment of just '*': direct entries only
        return re.compile(out + r"\Z")
    return re.compile(out.rstrip("/") + r"(?:/.*)?\Z")


def _split_roles(value: object) -> list[str]:
    items = value if isinstance(value, list) else re.split(r"[;,]", str(value))
    return [str(v).strip() for v in items if str(v).strip()]


class AclOracle:
    """Who may see each fixture document, derived from the manifests alone (deny by default)."""

    def __init__(self, manifests: list[Manifest]) -> None:
        self.roles: dict[str, frozenset[str]] = {}
        for manifest in manifests:
            if manifest.kind == "files":
                self._add_files(manifest)
            else:
                self._add_records(manifest)

    def _add_files(self, manifest: Manifest) -> None:
        root = manifest.root
        includes = [_glob_regex(g) for g in manifest.include]
        excludes = [_glob_regex(g) for g in manifest.exclude]
        rules = [(_glob_regex(r.match), r.roles) for r in manifest.acl.rules]
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            rel = path.relative_to(root).as_posix()
            if not any(g.match(rel) for g in includes) or any(g.match(rel) for g in excludes):
                continue
            roles = next((r for g, r in rules if g.match(rel)), manifest.acl.default)
            self._set(manifest, f"{manifest.source}:{rel}", roles)

    def _add_records(self, manifest: Manifest) -> None:
        root = manifest.root
        files = [root] if root.is_file() else sorted(root.rglob("*"))
        for file in files:
            suffix = file.suffix.lower()
            if suffix == ".csv":
                with file.open(newline="", encoding="utf-8-sig") as handle:
                    rows = list(csv.DictReader(handle))
            elif suffix in (".jsonl", ".ndjson"):
                rows = [json.loads(x) for x in file.read_text(encoding="utf-8").splitlines() if x.strip()]
            elif suffix == ".json":
                rows = json.loads(file.read_text(encoding="utf-8"))
            else:
                continue
            for row in rows:
                field_value = row.get(manifest.acl.field) if manifest.acl.field else None
                roles = _split_roles(field_value) if field_value is not None else []
                roles = roles or manifest.acl.default  # an empty field means the default (README)
                self._set(manifest, f"{manifest.source}:{str(row[manifest.id_field]).strip()}", roles)

    def _set(self, manifest: Manifest, doc_id: str, roles: tuple[str, ...] | list[str]) -> None:
        allowed = {r.strip() for r in roles if r.strip()}
        if manifest.acl.public:
            allowed.add("public")
        self.roles[doc_id] = frozenset(allowed)

    def visible(self, doc_id: str, roles: tuple[str, ...], user: str = EVAL_USER) -> bool:
        """True iff a principal with ``roles`` may see ``doc_id``; unknown documents are invisible."""
        allowed = self.roles.get(doc_id, frozenset())
        return "public" in allowed or f"user:{user}" in allowed or bool(allowed & set(roles))


def canary_owners(fixtures: Path) -> dict[str, str]:
    """Canary token -> the document that carries it (``fixtures/gold/canaries.jsonl``)."""
    lines = (fixtures / "gold" / "canaries.jsonl").read_text(encoding="utf-8").splitlines()
    return {row["token"]: row["doc_id"] for row in map(json.loads, filter(str.strip, lines))}


def leaks_in(payload: object, roles: tuple[str, ...], oracle: AclOracle, owners: dict[str, str]) -> list[str]:
    """Doc ids and canary tokens in a response that ``roles`` may not see."""
    text = json.dumps(payload, ensure_ascii=False)
    found = [d for d in set(re.findall(r'"doc_id": "([^"]+)"', text)) if not oracle.visible(d, roles)]
    for token in set(CANARY.findall(text)):
        owner = owners.get(token)
        if owner is None or not oracle.visible(owner, roles):
            found.append(token)
    return sorted(found)


# --- the run ----------------------------------------------------------------------------------


def _ranked_docs(hits: list) -> list[str]:
    seen: list[str] = []
    for hit in hits:
        doc_id = hit.payload.get("doc_id")
        if doc_id and doc_id not in seen:
            seen.append(doc_id)
    return seen


def _mean(values: list[float]) -> float:
    return round(sum(values) / len(values), 4) if values else 0.0


def _evaluate_mode(retriever: Retriever, queries: list[GoldQuery], oracle: AclOracle, owners: dict) -> dict:
    per_query, latencies, leaks = [], [], []
    for q in queries:
        request = ContextRequest(q.question, Principal(EVAL_USER, q.roles))
        started = time.perf_counter()
        hits, _ = retriever.search(request, limit=50)
        latencies.append((time.perf_counter() - started) * 1000)
        ranking = _ranked_docs(hits)
        leaks += [f"{q.id}:{x}" for x in leaks_in([h.payload for h in hits], q.roles, oracle, owners)]
        relevant = {d: 1 for d in q.relevant}
        per_query.append({
            "id": q.id, "kind": q.category, "roles": q.role_label, "top10": ranking[:10],
            "recall@3": recall_at(ranking, relevant, 3) if relevant else None,
            "recall@10": recall_at(ranking, relevant, 10) if relevant else None,
            "ndcg@10": ndcg_at(ranking, relevant, 10) if relevant else None,
        })
    scored = [p for p in per_query if p["recall@10"] is not None]
    by_role: dict[str, list[dict]] = defaultdict(list)
    for p in scored:
        by_role[p["roles"]].append(p)
    return {
        "recall@3": _mean([p["recall@3"] for p in scored]),
        "recall@10": _mean([p["recall@10"] for p in scored]),
        "ndcg@10": _mean([p["ndcg@10"] for p in scored]),
        "per_kind": {
            kind: {"queries": len(ps), "recall@10": _mean([p["recall@10"] for p in ps])}
            for kind in sorted({p["kind"] for p in scored}) for ps in [[p for p in scored if p["kind"] == kind]]
        },
        "per_role": {
            role: {"queries": len(ps), "recall@10": _mean([p["recall@10"] for p in ps]),
                   "ndcg@10": _mean([p["ndcg@10"] for p in ps])}
            for role, ps in sorted(by_role.items())
        },
        "latency_ms": {"p50": round(percentile(latencies, 50), 2), "p95": round(percentile(latencies, 95), 2)},
        "latencies_ms": [round(x, 2) for x in latencies],
        "leaks": leaks,
        "queries": per_query,
    }


def page_cited(q: GoldQuery, pack: dict) -> dict:
    """Did the pack cite the gold document on a page where the clause is?"""
    gold = dict(q.pages)
    cited = [sorted(set(p["pages"])) for p in pack["passages"] if p["doc_id"] in gold]
    hit = any(set(p["pages"]) & set(gold[p["doc_id"]]) for p in pack["passages"] if p["doc_id"] in gold)
    return {"id": q.id, "gold_pages": {d: list(p) for d, p in gold.items()}, "cited_pages": cited, "cited": hit}


def _context_checks(retriever: Retriever, queries: list[GoldQuery], oracle: AclOracle, owners: dict,
                    fixtures: Path) -> tuple[dict, dict]:
    """Stitching (multi-system questions) and leaks over full context packs, plus canary probes."""
    multi, stitched, complete, leaks, latencies, checked = [], 0, 0, [], [], 0
    paged: list[dict] = []
    for q in queries:
        started = time.perf_counter()
        pack = context_pack_json(retriever.context(ContextRequest(q.question, Principal(EVAL_USER, q.roles))))
        latencies.append((time.perf_counter() - started) * 1000)
        checked += 1
        leaks += [f"{q.id}:{x}" for x in leaks_in(pack, q.roles, oracle, owners)]
        if len(q.gold_sources) >= 2:
            found = {p["doc_id"].split(":", 1)[0] for p in pack["passages"] if p["doc_id"] in q.relevant}
            multi.append({"id": q.id, "gold_sources": sorted(q.gold_sources), "found_sources": sorted(found)})
            stitched += len(found) >= 2
            complete += found == q.gold_sources
        if q.pages and q.relevant:
            paged.append(page_cited(q, pack))
    probes = [json.loads(x) for x in (fixtures / "gold" / "canaries.jsonl").read_text().splitlines() if x.strip()]
    for probe in probes:
        for roles in PROBE_ROLE_SETS:
            pack = context_pack_json(retriever.context(ContextRequest(probe["probe"], Principal(EVAL_USER, roles))))
            checked += 1
            leaks += [f"probe:{probe['token']}:{'+'.join(roles) or 'public'}:{x}"
                      for x in leaks_in(pack, roles, oracle, owners)]
    stitching = {
        "multi_system_questions": len(multi),
        "with_2plus_gold_sources": stitched,
        "share": round(stitched / len(multi), 4) if multi else 0.0,
        "with_all_gold_sources": complete,
        "questions": multi,
        "contract_pages": {"questions": len(paged), "cited": sum(p["cited"] for p in paged),
                           "share": round(sum(p["cited"] for p in paged) / len(paged), 4) if paged else None,
                           "details": paged},
        "context_latency_ms": {"p50": round(percentile(latencies, 50), 2), "p95": round(percentile(latencies, 95), 2)},
        "context_latencies_ms": [round(x, 2) for x in latencies],
    }
    access = {"requests_checked": checked, "canaries": len(probes), "probe_role_sets": len(PROBE_ROLE_SETS),
              "leaks": len(leaks), "leak_details": leaks}
    return stitching, access


def evaluate_entities(gold_csv: Path) -> dict:
    """Pairwise P/R/F1 of ``entity_resolution.resolve.resolve_records`` over the distinct labelled names."""
    try:
        from entity_resolution.records import Mention
        from entity_resolution.resolve import resolve_records
    except Exception as exc:  # noqa: BLE001 - another team's module may be mid-change
        return {"available": False, "reason": f"entity_resolution API not importable: {exc}"}
    with gold_csv.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    etype = {"org": "organization", "person": "person"}
    gold: dict[tuple[str, str], str] = {}
    for row in rows:
        gold[(etype[row["entity_key"].split(":", 1)[0]], row["mention"])] = row["entity_key"]
    mentions = [Mention(t, s, source=r["source"], doc_id=r["doc_id"])
                for r in rows for t, s in [(etype[r["entity_key"].split(":", 1)[0]], r["mention"])]]
    try:
        resolution = resolve_records(mentions)
        predicted = {m: resolution.key_to_entity.get((m[0], Mention(m[0], m[1]).key)) for m in gold}
    except Exception as exc:  # noqa: BLE001
        return {"available": False, "reason": f"resolve_records failed: {type(exc).__name__}: {exc}"}
    names = sorted(gold)
    tp = fp = fn = 0
    wrong: list[str] = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            same_gold = gold[a] == gold[b]
            same_pred = predicted[a] is not None and predicted[a] == predicted[b]
            tp += same_gold and same_pred
            fp += same_pred and not same_gold
            fn += same_gold and not same_pred
            if same_gold != same_pred:
                wrong.append(f"{'merged' if same_pred else 'split'}: {a[1]!r} / {b[1]!r}")
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"available": True, "mentions": len(rows), "distinct_names": len(names),
            "gold_entities": len(set(gold.values())), "predicted_entities": len({p for p in predicted.values() if p}),
            "precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4),
            "tp": tp, "fp": fp, "fn": fn, "errors": wrong[:30]}


def run_all(
    out: Path, *, corpus: Path = FIXTURES, modes: tuple[str, ...] = MODES, encoder: object | None = None,
) -> dict:
    """Ingest every ``<corpus>/manifests/*.yaml`` into a scratch data dir, evaluate against
    ``<corpus>/gold``, write reports to ``out``. ``corpus`` is ``fixtures/`` or a generated corpus
    (``stitch eval generate``).

    ``modes`` are the search configurations compared (``SearchPlan.mode``); context packs, stitching
    and canary probes always use the configured plan."""
    fixtures = check_corpus(Path(corpus))
    started = time.perf_counter()
    manifests = [load_manifest(p) for p in sorted((fixtures / "manifests").glob("*.yaml"))]
    queries = load_queries(fixtures / "gold" / "queries.jsonl")
    oracle, owners = AclOracle(manifests), canary_owners(fixtures)
    scratch = Path(tempfile.mkdtemp(prefix="stitch-eval-"))
    services = Services(Settings(data_dir=scratch))
    if encoder is not None:  # tests reuse their session-wide model
        services.__dict__["encoder"] = encoder
    try:
        phases = {"setup": time.perf_counter() - started}
        job = ingest_manifests(manifests, services.ingest_context())
        phases["ingest"] = job.seconds
        base = services.retriever
        results = {}
        for mode in modes:
            t0 = time.perf_counter()
            retriever = base if mode == base.plan.mode else replace(base, plan=replace(base.plan, mode=mode))
            results[mode] = _evaluate_mode(retriever, queries, oracle, owners)
            phases[f"search_{mode}"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        stitching, access = _context_checks(base, queries, oracle, owners, fixtures)
        phases["context_and_probes"] = time.perf_counter() - t0
        dates = document_dates(services.store, fixtures / "gold" / "dates.jsonl")
    finally:
        services.store.close()
        shutil.rmtree(scratch, ignore_errors=True)
    access["leaks"] += sum(len(m["leaks"]) for m in results.values())
    access["leak_details"] += [f"search/{name}:{x}" for name, m in results.items() for x in m["leaks"]]
    primary = base.plan.mode
    result = {
        "corpus": {"path": str(fixtures), "manifests": [m.source for m in manifests], "documents": job.added + job.updated + job.unchanged,
                   "failed": job.failed, "invisible": job.invisible, "chunks": job.chunks,
                   "ingest_seconds": job.seconds},
        "queries": {"total": len(queries), "scored": sum(1 for q in queries if q.relevant),
                    "hidden_best_answer": sum(1 for q in queries if q.hidden_best)},
        "retrieval": {"primary_mode": primary, "modes": results},
        "stitching": stitching,
        "access_control": access,
        "entity_resolution": evaluate_entities(fixtures / "gold" / "entities.csv"),
        "dates": dates,
        "seconds": round(time.perf_counter() - started, 2),
        "phase_seconds": {k: round(v, 2) for k, v in phases.items()},
    }
    result["summary"] = issue11_summary(result)
    result["files"] = write_reports(result, Path(out))
    return result
