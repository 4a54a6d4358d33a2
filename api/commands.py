"""Library calls behind CLI commands (kept out of cli.py so the CLI stays a thin edge)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from api.keys import ApiKey, KeyStore, mint_key
from api.serving import audit_key_mint
from api.services import Services
from core.config import Settings
from core.identity import check_assertion

if TYPE_CHECKING:  # ingest's imports are not paid by `stitch query` (cold start)
    from ingest.report import JobReport


def run_ingest(
    settings: Settings, manifest_paths: list[Path], *, full: bool, show_progress: bool,
    take_over: bool = False, allow_mass_delete: bool = False,
) -> JobReport:
    """Validate every manifest first (nothing is ingested if one is bad), then sync them."""
    from ingest.manifest import load_manifest
    from ingest.pipeline import ingest_manifests

    manifests = [load_manifest(p) for p in manifest_paths]
    services = Services(settings, on_store_wait=_say)
    services.store  # noqa: B018 - take the store's lock before the model loads or the ledger is touched
    from ingest.progress import TerminalProgress

    bar = TerminalProgress(sys.stderr) if show_progress else None
    try:
        report = ingest_manifests(manifests, services.ingest_context(), full=full, progress=bar,
                                  take_over=take_over, allow_mass_delete=allow_mass_delete)
    finally:
        if bar is not None:
            bar.close()
        services.store.flush()
    _audit_ingest(settings, manifest_paths, report, full=full)
    return report


def run_remove_source(settings: Settings, source: str) -> JobReport:
    """Remove ``source`` from the index, ledger and registry (waits for the store's lock), audited."""
    from api.cli_audit import cli_actor
    from governance.audit import audit_event
    from ingest.pipeline import remove_source

    services = Services(settings, on_store_wait=_say)
    services.store  # noqa: B018 - take the store's lock before the ledger is touched
    try:  # no model: nothing is encoded
        report = remove_source(source, services.store, services.ledger, services.entity_registry)
    finally:
        services.store.flush()
    audit_event(settings, "source_remove", actor=cli_actor(), source=source, deleted=report.deleted)
    return report


def source_table(settings: Settings) -> list[dict]:
    """Every source the ledger knows: name, indexed documents, owning manifest."""
    from ingest.ledger import Ledger

    ledger = Ledger(settings.ledger_path)
    try:
        return [{"source": s, "documents": n, "owner": owner} for s, (n, owner) in ledger.sources().items()]
    finally:
        ledger.close()


def _audit_ingest(settings: Settings, paths: list[Path], report: JobReport, *, full: bool) -> None:
    from api.cli_audit import cli_actor
    from governance.audit import audit_event

    counts = {k: getattr(report, k) for k in ("added", "updated", "unchanged", "deleted", "failed", "invisible")}
    audit_event(settings, "ingest", actor=cli_actor(), paths=[str(p.resolve()) for p in paths],
                sources=list(report.sources), full=full, **counts)


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def format_report(report: JobReport) -> str:
    """Human-readable job report: counts, then one line per failed input with its reason."""
    rate = f", {(report.added + report.updated) / report.seconds:.1f} docs/s" if report.seconds else ""
    lines = [
        f"sources: {', '.join(report.sources)}",
        f"added {report.added}  updated {report.updated}  unchanged {report.unchanged}  "
        f"deleted {report.deleted}  failed {report.failed}  invisible {report.invisible}  "
        f"acl_defaulted {report.acl_defaulted}  "
        f"chunks {report.chunks}  ({report.seconds:.1f}s{rate})",
    ]
    lines += [f"  FAILED {e.source}: {e.item}: {e.reason}" for e in report.errors]
    lines += [f"  warning: {w}" for w in report.warnings]
    if report.invisible:
        lines.append(f"  note: {report.invisible} document(s) have an empty ACL and are visible to no one")
    return "\n".join(lines)


def run_query(
    settings: Settings, text: str, *, roles: list[str], user: str, top_k: int, max_tokens: int, sources: list[str]
) -> dict:
    """The context pack for a principal, as the HTTP API would return it.

    While ``stitch serve`` holds the embedded store, the request goes to that server instead (the
    store is never opened beside it); another holder (a CLI ingest) is waited for, bounded.
    """
    from api.render import context_pack_json
    from api.serving import forward_context, running_server
    from core.models import Principal, SearchFilters
    from retrieval.context import ContextRequest

    asserted = check_assertion(user, roles, where="stitch query")  # the steward's own CLI: any id and role
    if running_server(settings) is None:
        principal = Principal(asserted.id or "", asserted.roles)
        request = ContextRequest(text, principal, top_k, max_tokens, SearchFilters(tuple(sources)))
        services = Services(settings, on_store_wait=_say)
        services.store  # noqa: B018 - waits for the lock before the model loads
        return context_pack_json(services.retriever.context(request))
    body = {"query": text, "principal": {"id": user, "roles": list(roles)}, "top_k": top_k,
            "max_tokens": max_tokens, "filters": {"sources": list(sources)}}
    return forward_context(settings, body)


def format_context(data: dict) -> str:
    """Human-readable context pack: the context, then the citations."""
    lines = [data["context"] or "(no passages visible for this principal)", ""]
    for c in data["citations"]:
        where = f" pages {c['pages']}" if c["pages"] else ""
        lines.append(f"[{c['id']}] {c['title']} — {c['doc_id']} ({c['source']}){where} {c['uri'] or ''}".rstrip())
    usage = data["usage"]
    lines.append(f"\n{usage['passages']} passages, {usage['tokens']} tokens, truncated={usage['truncated']}, "
                 f"{data['timings_ms'].get('total', 0)} ms")
    return "\n".join(lines)


DEMO_KEY_NAME = "demo"


def prepare_demo(settings: Settings, fixtures: Path, *, host: str, port: int) -> tuple[str, str, ApiKey]:
    """Ingest every fixture manifest and mint the demo key: (banner to print, key plaintext, key record).

    The key is for the serving process to ``hold`` (never stored, gone with the process): scope
    ``context``, the roles the manifests' ACLs name, no principal ids. Demo keys that older versions
    stored are revoked, so demos never pile up keys.
    """
    from ingest.manifest import load_manifest

    paths = sorted(fixtures.glob("*.yaml"))
    report = run_ingest(settings, paths, full=False, show_progress=sys.stderr.isatty())
    manifests = [load_manifest(p) for p in paths]
    KeyStore(settings.keys_path).revoke_named(DEMO_KEY_NAME)
    plaintext, key = mint_key(scopes=("context",), roles=_manifest_roles(manifests), name=DEMO_KEY_NAME)
    audit_key_mint(settings, key)
    from core.store.factory import close_store

    close_store(settings)  # the server process opens it again
    banner = (
        f"{format_report(report)}\n\nStitch demo on http://{host}:{port}  (docs: http://{host}:{port}/docs)\n"
        f"Demo key (this process only; roles {', '.join(key.roles)}): {plaintext}\n\n"
        f"curl -s http://{host}:{port}/v1/context -H 'Authorization: Bearer {plaintext}' "
        "-H 'Content-Type: application/json' "
        "-d '{\"query\": \"How do refunds work for enterprise customers?\", "
        "\"principal\": {\"roles\": [\"sales\"]}, \"max_tokens\": 800}'\n\n"
        "In another terminal (queries are forwarded to this server while it holds the store):\n"
        "  .venv/bin/stitch query \"How do refunds work?\" --role sales\n"
    )
    return banner, plaintext, key


def _manifest_roles(manifests: list) -> tuple[str, ...]:
    """Every role a manifest's ACL names (defaults and rules), for a key that needs no more."""
    named = (r for m in manifests for r in (*m.acl.default, *(x for rule in m.acl.rules for x in rule.roles)))
    return tuple(sorted({r for r in named if not r.startswith("user:")}))
