"""What each console page shows, computed from the same library functions the API and CLI use."""

from __future__ import annotations

import json
from collections import deque
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

from api import reads
from api.jobs import JobRunner
from api.services import Services
from core.models import Principal


def when(epoch: float | None) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC") if epoch else "—"


def sources_page(services: Services, jobs: JobRunner, *, key_id: str | None) -> list[dict]:
    """Each indexed source with its counts, and from the newest job (of this key, unless admin) that synced
    it: when, by which manifest, how many inputs failed and why."""
    recent = [j for j in jobs.recent(key_id=key_id, limit=200) if j.report]
    rows = []
    for summary in services.ledger.source_summaries():
        last = next((j for j in recent if summary["source"] in j.sources), None)
        errors = [e for e in (last.report.get("errors", []) if last else []) if e.get("source") == summary["source"]]
        manifests = getattr(last, "manifests", None) or []
        rows.append({**summary, "last_indexed": when(summary["last_indexed"]),
                     "last_sync": when(last.finished_at) if last else "— (CLI or not synced here)",
                     "job_id": last.job_id if last else None, "failed": len(errors), "errors": errors,
                     "manifest": ", ".join(map(str, manifests)) or "—"})
    return rows


def jobs_page(jobs: JobRunner, *, key_id: str | None) -> list[dict]:
    return [{**asdict(j), "submitted": when(j.submitted_at), "finished": when(j.finished_at)}
            for j in jobs.recent(key_id=key_id)]


def explained_pack(services: Services, principal: Principal, query: str, *, key_id: str, max_tokens: int) -> dict:
    """The playground: the context pack as POST /v1/context returns it; each passage's ``visible_via``
    holds the principal's tokens that matched its ACL (why it was visible)."""
    from retrieval.context import ContextRequest

    return reads.context_answer(services, ContextRequest(query, principal, 8, max_tokens), key_id=key_id)


def feedback_labels(doc_ids: list[str], choices: list[str]) -> list:
    """The feedback form's rows (one choice per passage: '', 'relevant', 'not_relevant', 'wrong_entity:<id>')."""
    from core.errors import InputError
    from governance.feedback import Label, check_labels

    if len(doc_ids) != len(choices):
        raise InputError("feedback: one label per passage")
    labels = [Label(doc, *choice.split(":", 1)) if choice.startswith("wrong_entity:") else Label(doc, choice)
              for doc, choice in zip(doc_ids, choices) if choice]
    if not labels:
        raise InputError("feedback: mark at least one passage")
    check_labels(labels)
    return labels


def quality_page(reports_dir: Path) -> dict:
    """The latest ``stitch eval all`` report (report.md rendered, headline numbers) and its plots."""
    import markdown

    report_md, report_json = reports_dir / "report.md", reports_dir / "report.json"
    if not report_md.exists():
        return {"found": False, "dir": str(reports_dir)}
    data = json.loads(report_json.read_text(encoding="utf-8")) if report_json.exists() else {}
    return {
        "found": True, "dir": str(reports_dir), "generated": when(report_md.stat().st_mtime),
        "html": markdown.markdown(report_md.read_text(encoding="utf-8"), extensions=["tables"]),
        "plots": sorted(p.name for p in reports_dir.glob("*.png")),
        "leaks": data.get("access_control", {}).get("leaks") if isinstance(data, dict) else None,
    }


def audit_page(path: Path, *, key_id: str = "", principal_id: str = "", limit: int = 200) -> list[dict]:
    """The newest audit records, optionally for one key or principal; ids, routes and counts only —
    the log holds no query or document text, and the page shows no query hash either."""
    if not path.exists():
        return []
    with path.open(encoding="utf-8") as handle:
        lines = deque(handle, maxlen=5000)
    rows = []
    for line in reversed(lines):
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if (key_id and record.get("key_id") != key_id) or (principal_id and record.get("principal_id") != principal_id):
            continue
        rows.append({k: record.get(k) for k in ("time", "request_id", "key_id", "principal_id", "roles", "method",
                                                "route", "status", "latency_ms")}
                    | {"documents": len(record.get("doc_ids") or [])})
        if len(rows) >= limit:
            break
    return rows
