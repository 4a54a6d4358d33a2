"""``stitch eval leaks``: build (or take) a corpus with canaries, ingest it through the real pipeline,
re-sync it after deletes and narrowed ACLs, serve the real app in-process and fire randomised
principal × query × endpoint probes; every response is judged by an independent oracle.

One process on purpose: the embedded store is single-process, and the query model is loaded once
and its query vectors reused (the same query is asked by many principals on many endpoints).
"""

from __future__ import annotations

import inspect
import json
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from api.app import create_app
from api.keys import SCOPES, KeyStore
from api.services import Services
from core.config import Settings
from core.errors import StitchError
from evaluation.leaks_corpus import CANARY_PATTERN, CorpusPlan, apply_resync_changes, build_corpus
from evaluation.leaks_identity import TestIdentityProvider
from evaluation.leaks_identity import supported as jwt_supported
from evaluation.leaks_judge import EntityMap, Judge
from evaluation.leaks_oracle import AccessOracle, KeyGrant
from evaluation.leaks_probes import MISSING_DOC, MISSING_ENTITY, ProbeContext, ProbeKey, run_probes
from evaluation.leaks_report import Tally, build_report
from ingest.manifest import load_manifest
from ingest.pipeline import ingest_manifests

__all__ = ["run_leaks", "prepare_lab", "probe_lab", "CachedQueryEncoder"]
DEFAULT_PROBES = 10_000


class CachedQueryEncoder:
    """The session's encoder with query vectors memoised: probes repeat queries across principals."""

    def __init__(self, inner: object) -> None:
        self._inner, self._queries = inner, {}

    def __getattr__(self, name: str):  # noqa: ANN204 - delegate everything else (passages, tokenizer)
        return getattr(self._inner, name)

    def encode_query(self, text: str):  # noqa: ANN201
        if text not in self._queries:
            self._queries[text] = self._inner.encode_query(text)
        return self._queries[text]


def manifest_paths(corpus: Path) -> list[Path]:
    folder = corpus / "manifests" if (corpus / "manifests").is_dir() else corpus
    return sorted(folder.glob("*.yaml")) + sorted(folder.glob("*.yml"))


def _settings(data_dir: Path, corpus: Path, idp: TestIdentityProvider | None) -> Settings:
    extra = idp.settings_fields() if idp else {}
    if "ingest_roots" in Settings.model_fields:  # API ingest confined to configured roots (confinement)
        extra["ingest_roots"] = [corpus]
    return Settings(data_dir=data_dir, **extra)


def _ingest_each(paths: list[Path], services: Services) -> dict:
    """Each manifest on its own: one the code refuses (an odd role string) must not stop the others."""
    outcome = {"refused": {}, "failed": 0, "deleted": 0, "documents": 0}
    for path in paths:
        try:
            report = ingest_manifests([load_manifest(path)], services.ingest_context())
        except StitchError as exc:
            outcome["refused"][path.name] = str(exc)[:300]
            continue
        outcome["failed"] += report.failed
        outcome["deleted"] += report.deleted
        outcome["documents"] += report.added + report.updated + report.unchanged
    return outcome


def steward_entities(services: Services) -> EntityMap:
    """Unfiltered registry view (CLI steward): entity id -> mention documents and aliases."""
    from entity_resolution.views import entity_view, list_entities

    store = services.entity_registry.store
    found = EntityMap()
    for view in list_entities(store, acl_tokens=None, limit=1_000_000):
        detail = entity_view(store, view.entity_id, acl_tokens=None)
        found.docs[view.entity_id] = {m.doc_id for m in detail.mentions}
        found.aliases[view.entity_id] = set(detail.aliases) | {detail.name}
    try:  # the mentions table belongs to entity_resolution: attribution only, so a schema change is no error
        for doc_id, acl in store.db.execute("SELECT doc_id, acl FROM mentions").fetchall():
            tokens = json.loads(acl) if str(acl).startswith("[") else str(acl).split()
            found.stored_acl.setdefault(doc_id, set()).update(tokens)
    except Exception:  # noqa: BLE001, S110
        pass
    return found


def _create_keys(store: KeyStore) -> tuple[list[ProbeKey], list[ProbeKey], ProbeKey | None, ProbeKey]:
    """Context keys of every kind, two ingest keys (one may not read the other's jobs), a metrics key, and
    the service key that forwards verified users' tokens."""
    parameters = inspect.signature(store.create).parameters
    binds = "principals" in parameters  # keys state the principal ids they may assert (identity change)
    verifies = "verified_users_only" in parameters

    def make(name: str, scope: str, roles: tuple[str, ...], principals: tuple[str, ...] = (), **more) -> ProbeKey:
        extra = {"principals": principals, **more} if binds else {}
        secret = store.create(scopes=(scope,), roles=roles, name=name, **extra)
        return ProbeKey(name, secret, KeyGrant(roles, principals if binds else ()), scope)

    context = [
        make("orchestrator", "context", ("*",), ("*",)),
        make("sales-bot", "context", ("sales", "support"), ("dana",)),
        make("finance-bot", "context", ("finance", "exec")),
        make("no-roles", "context", ()),
    ]
    ingest = [make("ingest-a", "ingest", ()), make("ingest-b", "ingest", ())]
    forwarder = make("user-forwarder", "context", (), **({"verified_users_only": True} if verifies else {}))
    return context, ingest, (make("metrics", "metrics", ()) if "metrics" in SCOPES else None), forwarder


def _submit_jobs(client, ctx: ProbeContext, corpus: Path, plan: CorpusPlan) -> None:  # noqa: ANN001
    """Jobs for the job-report probes: a steward's re-sync, and an inline manifest pointed outside the corpus."""
    owner = ctx.ingest_keys[0]
    headers = {"Authorization": f"Bearer {owner.secret}"}
    outside = plan.outside_dir or str(corpus.parent)
    bodies = [{"manifests": [str(p) for p in manifest_paths(corpus)[:1]]},
              {"manifest": {"source": "outside", "kind": "files", "path": outside, "acl": {"public": True}}}]
    for body in bodies:
        response = client.post("/v1/ingest/jobs", json=body, headers=headers)
        if response.status_code == 202:
            ctx.job_ids[response.json()["job_id"]] = owner.name
    deadline = time.monotonic() + 120
    for job_id in ctx.job_ids:
        while time.monotonic() < deadline:
            state = client.get(f"/v1/ingest/jobs/{job_id}", headers=headers).json()
            if state.get("status") in ("succeeded", "failed", "interrupted"):
                break
            time.sleep(0.2)
    ctx.bad_ingest_bodies = [bodies[1], {"manifests": [f"{outside}/keys.md"]},
                             *({"manifests": [str(p)]} for p in sorted(corpus.rglob("*.jsonl"))[:1])]


def _queries(plan: CorpusPlan, oracle: AccessOracle) -> list[str]:
    if plan.queries:
        return plan.queries
    import re

    tokens = {t for d in oracle.docs.values() for t in re.findall(CANARY_PATTERN + r"|[a-z]+-canary-\d{4}", d.text)}
    return sorted(tokens | {d.split(":", 1)[1].rsplit(".", 1)[0].replace("/", " ") for d in oracle.docs})


@dataclass
class LeakLab:
    """An ingested, re-synced corpus in a scratch data dir, ready to be probed (possibly several times)."""

    scratch: Path
    corpus: Path
    plan: CorpusPlan
    settings: Settings
    services: Services
    info: dict
    idp: TestIdentityProvider | None = None

    def close(self) -> None:
        self.services.store.close()
        shutil.rmtree(self.scratch, ignore_errors=True)


def prepare_lab(*, seed: int = 0, corpus: Path | None = None, encoder: object | None = None) -> LeakLab:
    """Build (or take) the corpus, ingest it, apply the re-sync changes (generated corpus) and re-sync."""
    started = time.perf_counter()
    scratch = Path(tempfile.mkdtemp(prefix="stitch-leaks-"))
    generated = corpus is None
    corpus = scratch / "corpus" if generated else Path(corpus).resolve()
    if generated:
        build_corpus(corpus, seed=seed)
    idp = TestIdentityProvider(scratch / "idp") if jwt_supported() else None
    settings = _settings(scratch / "data", corpus, idp)
    services = Services(settings)
    services.__dict__["encoder"] = CachedQueryEncoder(encoder or services.encoder)
    paths = manifest_paths(corpus)
    info = {"path": "generated" if generated else str(corpus), "seed": seed,
            "first_sync": _ingest_each(paths, services)}
    if generated:
        apply_resync_changes(corpus)
        info["resync"] = _ingest_each(paths, services)
    info["ingest_seconds"] = round(time.perf_counter() - started, 2)
    return LeakLab(scratch, corpus, CorpusPlan.load(corpus), settings, services, info, idp)


def run_leaks(*, probes: int = DEFAULT_PROBES, seed: int = 0, corpus: Path | None = None,
              encoder: object | None = None, command: str = "") -> dict:
    """``stitch eval leaks``: prepare a lab, probe it, return the report (``leaks`` = 0 or exit 1)."""
    started = time.perf_counter()
    lab = prepare_lab(seed=seed, corpus=corpus, encoder=encoder)
    try:
        report = probe_lab(lab, probes=probes, seed=seed)
    finally:
        lab.close()
    report["seconds"]["total"] = round(time.perf_counter() - started, 2)
    report["command"] = command
    return report


def probe_lab(lab: LeakLab, *, probes: int, seed: int = 0, wrap_store=None,  # noqa: ANN001
              focus: Callable[[str], bool] | None = None) -> dict:
    """Serve the real app over the lab and probe it; ``wrap_store`` (tests) swaps in, e.g., a leaky store;
    ``focus`` (tests) keeps only the queries and document targets it accepts, to aim probes at one class."""
    from fastapi.testclient import TestClient

    services = lab.services
    real_store = services.store
    if wrap_store is not None:
        services.use_store(wrap_store(real_store))
    oracle = AccessOracle.from_manifests(manifest_paths(lab.corpus))
    entities = steward_entities(services)
    judge, plan = Judge(oracle, lab.plan, entities), lab.plan
    context_keys, ingest_keys, metrics_key, forwarder = _create_keys(KeyStore(lab.settings.keys_path))
    doc_targets = sorted(set(oracle.docs) | {c.doc_id for c in plan.canaries} | {MISSING_DOC})
    queries = _queries(plan, oracle)
    if focus is not None:
        doc_targets, queries = [d for d in doc_targets if focus(d)], [q for q in queries if focus(q)]
    tally = Tally()
    try:
        with TestClient(create_app(lab.settings, services=services)) as client:
            ctx = ProbeContext(client, judge, context_keys, ingest_keys, queries, doc_targets,
                               sorted(set(entities.docs) | {MISSING_ENTITY}), metrics_key=metrics_key,
                               idp=lab.idp, forwarder=forwarder)
            _submit_jobs(client, ctx, lab.corpus, plan)
            t0 = time.perf_counter()
            for endpoint, outcome, leaks in run_probes(ctx, probes, seed=seed):
                tally.add(endpoint, outcome, leaks)
            probe_seconds = time.perf_counter() - t0
    finally:
        if wrap_store is not None:  # un-wrap: later probes of this lab see the real store again
            services.use_store(real_store)
    classes = {c.cls for c in plan.canaries} | {"jobs", "confinement", "replay"} | ({"jwt"} if lab.idp else set())
    classes = sorted(classes)
    corpus_info = {**lab.info, "documents": len(oracle.docs), "canaries": len(plan.canaries),
                   "entities": len(entities.docs), "queries": len(ctx.queries), "classes": classes}
    return build_report(tally, classes=classes, corpus=corpus_info,
                        seconds={"ingest": lab.info["ingest_seconds"], "probes": round(probe_seconds, 2),
                                 "per_probe_ms": round(1000 * probe_seconds / max(probes, 1), 2)})
