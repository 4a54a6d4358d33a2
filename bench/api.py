"""HTTP API load benchmark: N concurrent clients over loopback against a real `stitch serve`.

    .venv/bin/python bench/api.py --clients 50 --seconds 20

Starts a server on a scratch data dir, ingests the fixture wiki through POST /v1/ingest/jobs, then runs
``--clients`` closed-loop clients (each sends its next request when the last one returns) for
``--seconds`` (or ``--requests`` in total), and prints one JSON object: RPS, p50/p95/p99, errors.
``--url`` and ``--key`` bench an already running server instead.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
STITCH = str(Path(sys.executable).parent / "stitch")
QUERIES = [
    ("How do refunds work for enterprise customers?", ["sales"]),
    ("Q3 revenue forecast", ["finance"]),
    ("parental leave policy", ["hr"]),
    ("incident runbook paging escalation", ["engineering"]),
    ("SLA credits for downtime", ["support"]),
    ("contract playbook liability cap", ["legal", "exec"]),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_server(data: Path, manifest: Path) -> tuple[subprocess.Popen, str, str]:
    sys.path.insert(0, str(ROOT))
    from api.keys import KeyStore

    key = KeyStore(data / "api_keys.json").create(
        scopes=("context", "ingest"), roles=("*",), principals=("*",), name="bench"
    )
    port = _free_port()
    env = {**os.environ, "STITCH_DATA_DIR": str(data), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.Popen([STITCH, "serve", "--port", str(port)], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.3)
    auth = {"Authorization": f"Bearer {key}"}
    job = httpx.post(f"{url}/v1/ingest/jobs", json={"manifests": [str(manifest)]}, headers=auth).json()["job_id"]
    while httpx.get(f"{url}/v1/ingest/jobs/{job}", headers=auth).json()["status"] in ("queued", "running"):
        time.sleep(0.3)
    return proc, url, key


async def _client(http: httpx.AsyncClient, n: int, stop_at: float, budget: list[int], out: dict) -> None:
    i = n
    while time.monotonic() < stop_at and budget[0] > 0:
        budget[0] -= 1
        query, roles = QUERIES[i % len(QUERIES)]
        i += 1
        body = {"query": query, "principal": {"id": f"user{n}", "roles": roles}, "max_tokens": 1000}
        started = time.perf_counter()
        try:
            response = await http.post("/v1/context", json=body)
            ok = response.status_code == 200
        except httpx.HTTPError:
            ok = False
        out["latencies"].append(time.perf_counter() - started)
        out["errors"] += 0 if ok else 1


async def _load(url: str, key: str, *, clients: int, seconds: float, requests: int) -> dict:
    out: dict = {"latencies": [], "errors": 0}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {key}"}, limits=limits,
                                 timeout=30) as http:
        await http.post("/v1/context", json={"query": "warm", "principal": {"id": "w", "roles": ["sales"]}})
        started = time.monotonic()
        budget = [requests]
        await asyncio.gather(*(_client(http, n, started + seconds, budget, out) for n in range(clients)))
        elapsed = time.monotonic() - started
    lat = sorted(out["latencies"])
    pct = (lambda q: round(lat[min(len(lat) - 1, int(q * len(lat)))] * 1000, 1)) if lat else (lambda q: None)
    return {
        "clients": clients, "requests": len(lat), "errors": out["errors"], "seconds": round(elapsed, 2),
        "rps": round(len(lat) / elapsed, 1), "p50_ms": pct(0.50), "p95_ms": pct(0.95), "p99_ms": pct(0.99),
        "mean_ms": round(statistics.fmean(lat) * 1000, 1) if lat else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--requests", type=int, default=20_000, help="upper bound on requests in total")
    parser.add_argument("--manifest", type=Path, default=ROOT / "fixtures" / "manifests" / "wiki.yaml")
    parser.add_argument("--url")
    parser.add_argument("--key")
    args = parser.parse_args()
    proc = None
    with tempfile.TemporaryDirectory(prefix="stitch-bench-") as scratch:
        if args.url:
            url, key = args.url, args.key
        else:
            proc, url, key = _start_server(Path(scratch), args.manifest.resolve())
        try:
            result = asyncio.run(_load(url, key, clients=args.clients, seconds=args.seconds, requests=args.requests))
        finally:
            if proc is not None:
                proc.send_signal(signal.SIGINT)
                proc.wait(timeout=30)
    result.update(cpus=os.cpu_count(), load_avg_1m=round(os.getloadavg()[0], 2), endpoint="POST /v1/context",
                  corpus=str(args.manifest.name))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
