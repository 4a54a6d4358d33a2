"""Time-to-revoke and time-to-forget against a real `stitch serve`: after an ingest job that narrows an ACL
(or deletes a document) reports done, how long until no endpoint shows the old state?

    .venv/bin/python bench/revoke.py --rounds 3

Builds a scratch corpus (a wiki page and a CRM record about "Falcon Dynamics", visible to `sales`), serves it,
then per round: (1) narrows both to `exec` while the page's new content fails to parse, (2) restores them,
(3) deletes both. After each job reports done it polls, as a `sales` principal, POST /v1/context,
POST /v1/search, GET /v1/documents/{id}, GET /v1/entities?q=falcon and GET /v1/entities/{id} until none shows
the old state. Prints one JSON object; the goal is 0 ms (the old state is gone when the job returns) and
`stale_reads_after_job` 0.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
STITCH = str(Path(sys.executable).parent / "stitch")
PAGE, RECORD = "wiki:plans/falcon.md", "crm:F-1"
QUERY = "Falcon Dynamics merger plan"
SALES = {"id": "sal", "roles": ["sales"]}
WIKI = "source: wiki\nkind: files\npath: wiki\ninclude: ['**/*.md']\nacl:\n  default: [staff]\n  rules:\n" \
       "    - {{match: 'plans/**', roles: [{role}]}}\n"
CRM = "source: crm\nkind: records\npath: crm.jsonl\nid_field: id\ntitle_field: name\ntext_fields: [notes]\n" \
      "entity_fields:\n  organization: [name]\nacl:\n  field: roles\n  default: [staff]\n"
GOOD_PAGE = "# Falcon plan\n\nThe merger plan with Falcon Dynamics closes in March. Board approval is pending.\n"


def _write_corpus(root: Path, *, role: str, page: str | None, record: bool) -> list[str]:
    (root / "wiki" / "plans").mkdir(parents=True, exist_ok=True)
    (root / "wiki" / "handbook.md").write_text("# Handbook\n\nExpenses are filed monthly.\n")
    falcon = root / "wiki" / "plans" / "falcon.md"
    if page is None:
        falcon.unlink(missing_ok=True)
    else:
        falcon.write_text(page)
    rows = [{"id": "G-1", "name": "Globex Corporation", "notes": "renewal in May", "roles": "sales"}]
    if record:
        rows.append({"id": "F-1", "name": "Falcon Dynamics", "notes": "merger talks, confidential", "roles": role})
    (root / "crm.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (root / "wiki.yaml").write_text(WIKI.format(role=role))
    (root / "crm.yaml").write_text(CRM)
    return [str(root / "wiki.yaml"), str(root / "crm.yaml")]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serve(data: Path) -> tuple[subprocess.Popen, httpx.Client]:
    sys.path.insert(0, str(ROOT))
    from api.keys import KeyStore

    key = KeyStore(data / "api_keys.json").create(scopes=("context", "ingest"), roles=("*",), name="bench-revoke")
    port = _free_port()
    env = {**os.environ, "STITCH_DATA_DIR": str(data), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.Popen([STITCH, "serve", "--port", str(port)], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    http = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {key}"}, timeout=60)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if http.get("/readyz", timeout=2).status_code == 200:
                return proc, http
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    proc.kill()
    raise SystemExit("stitch serve did not become ready")


def _ingest(http: httpx.Client, manifests: list[str]) -> dict:
    job = http.post("/v1/ingest/jobs", json={"manifests": manifests}).json()["job_id"]
    while (state := http.get(f"/v1/ingest/jobs/{job}").json())["status"] in ("queued", "running"):
        time.sleep(0.02)
    return state


def _old_state_shown(http: httpx.Client, entity_id: str | None) -> list[str]:
    """Endpoints on which the `sales` principal still sees the Falcon page, record or entity."""
    shown = []
    params = {"principal_id": SALES["id"], "role": SALES["roles"]}
    ctx = http.post("/v1/context", json={"query": QUERY, "principal": SALES, "max_tokens": 800}).json()
    if {p.get("doc_id") for p in ctx.get("passages", [])} & {PAGE, RECORD} or \
            any("falcon" in e["name"].lower() for e in ctx.get("entities", [])):
        shown.append("context")
    hits = http.post("/v1/search", json={"query": QUERY, "principal": SALES}).json()
    if {h.get("doc_id") for h in hits.get("hits", hits.get("results", []))} & {PAGE, RECORD}:
        shown.append("search")
    if any(http.get(f"/v1/documents/{d}", params=params).status_code == 200 for d in (PAGE, RECORD)):
        shown.append("documents")
    if http.get("/v1/entities", params={**params, "q": "falcon"}).json().get("entities"):
        shown.append("entities_list")
    if entity_id and http.get(f"/v1/entities/{entity_id}", params=params).status_code == 200:
        shown.append("entities_show")
    return shown


def _time_until_gone(http: httpx.Client, entity_id: str | None, timeout: float) -> tuple[float | None, int, list]:
    """Milliseconds from the job's end until nothing shows the old state (0 when gone on the first probe)."""
    started, stale, first = time.perf_counter(), 0, None
    while time.perf_counter() - started < timeout:
        shown = _old_state_shown(http, entity_id)
        if not shown:
            return (0.0 if stale == 0 else round((time.perf_counter() - started) * 1000, 1)), stale, first or []
        stale, first = stale + 1, first or shown
        time.sleep(0.01)
    return None, stale, first or []


def _round(http: httpx.Client, root: Path, timeout: float) -> dict:
    _ingest(http, _write_corpus(root, role="sales", page=GOOD_PAGE, record=True))
    params = {"principal_id": SALES["id"], "role": SALES["roles"], "q": "falcon"}
    entity_id = next((e["entity_id"] for e in http.get("/v1/entities", params=params).json()["entities"]), None)
    visible_before = _old_state_shown(http, entity_id)
    narrow = _ingest(http, _write_corpus(root, role="exec", page="   \n", record=True))  # new page fails to parse
    revoke_ms, revoke_stale, revoke_seen = _time_until_gone(http, entity_id, timeout)
    _ingest(http, _write_corpus(root, role="sales", page=GOOD_PAGE, record=True))
    restored = _old_state_shown(http, entity_id)
    _ingest(http, _write_corpus(root, role="sales", page=None, record=False))
    forget_ms, forget_stale, forget_seen = _time_until_gone(http, entity_id, timeout)
    return {"visible_before": visible_before, "restored": restored, "narrow_job_failed": narrow.get("report", {}).get("failed"),
            "revoke_ms": revoke_ms, "revoke_stale_reads": revoke_stale, "revoke_seen_on": revoke_seen,
            "forget_ms": forget_ms, "forget_stale_reads": forget_stale, "forget_seen_on": forget_seen}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=30.0, help="give up waiting after this many seconds")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="stitch-revoke-") as scratch:
        root = Path(scratch)
        proc, http = _serve(root / "data")
        try:
            rounds = [_round(http, root / "corpus", args.timeout) for _ in range(args.rounds)]
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=30)
    worst = (lambda k: None if any(r[k] is None for r in rounds) else max(r[k] for r in rounds))
    print(json.dumps({
        "time_to_revoke_ms_max": worst("revoke_ms"), "time_to_forget_ms_max": worst("forget_ms"),
        "stale_reads_after_job": sum(r["revoke_stale_reads"] + r["forget_stale_reads"] for r in rounds),
        "rounds": rounds, "cpus": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2),
    }))


if __name__ == "__main__":
    main()
