"""HTTP API load benchmark: N concurrent clients over loopback against a real `stitch serve`.

    .venv/bin/python bench/api.py --clients 1 8 50 --seconds 15
    .venv/bin/python bench/api.py --clients 20 --ingest-beside 600     # ingest 2x600 SciFact docs beside serving

Starts a server on a scratch data dir, ingests the fixture wiki through POST /v1/ingest/jobs, then runs
each ``--clients`` level of closed-loop clients (each sends its next request when the last one returns)
for ``--seconds`` against the same server, and prints one JSON object: per level RPS, p50/p95/p99,
errors (503s counted apart), and ratios to the single-client figure measured in the same run.
``--ingest-beside N`` also times an ingest job of N SciFact documents alone and then while the
clients query (queries measured with and without it). ``--url``/``--key`` bench a running server.
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


def _start_server(scratch: Path, manifest: Path) -> tuple[subprocess.Popen, str, str]:
    """A server on ``scratch/data`` whose HTTP ingest may read the manifest's tree and ``scratch/feeds``
    (ingest is confined to STITCH_INGEST_ROOTS, and never to the data dir)."""
    sys.path.insert(0, str(ROOT))
    data = scratch / "data"
    data.mkdir()
    from api.keys import KeyStore

    key = KeyStore(data / "api_keys.json").create(
        scopes=("context", "ingest"), roles=("*",), principals=("*",), name="bench"
    )
    port = _free_port()
    roots = json.dumps([str(manifest.parent.parent), str(scratch / "feeds")])
    env = {**os.environ, "STITCH_DATA_DIR": str(data), "STITCH_INGEST_ROOTS": roots,
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.Popen([STITCH, "serve", "--port", str(port)], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/readyz", timeout=10).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        else:
            raise RuntimeError(f"`stitch serve` on {url} was not ready after 300 s (exit code {proc.poll()})")
        auth = {"Authorization": f"Bearer {key}"}
        job = httpx.post(f"{url}/v1/ingest/jobs", json={"manifests": [str(manifest)]}, headers=auth,
                         timeout=120).json()["job_id"]
        while httpx.get(f"{url}/v1/ingest/jobs/{job}", headers=auth, timeout=120).json()["status"] in (
                "queued", "running"):
            time.sleep(0.3)
    except BaseException:
        proc.kill()  # never leave a server behind
        raise
    return proc, url, key


class _RawResponse:
    def __init__(self, status_code: int, body: bytes) -> None:
        self.status_code, self._body = status_code, body

    def json(self) -> dict:
        return json.loads(self._body)


class RawClient:
    """One keep-alive HTTP/1.1 connection of one closed-loop client (``--client raw``, the default): the
    request bytes are built with the stdlib and the answer read by Content-Length, so the load generator
    costs a fraction of httpx's CPU per request — on a 2-core box that CPU is taken from the server."""

    def __init__(self, url: str, key: str) -> None:
        host, _, port = url.removeprefix("http://").partition(":")
        self.host, self.port, self.key = host, int(port or 80), key
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def post(self, path: str, *, json: dict) -> _RawResponse:  # noqa: A002 - httpx's name
        import json as _json

        body = _json.dumps(json).encode()
        head = (f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nAuthorization: Bearer {self.key}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
        for attempt in (0, 1):  # a connection the server closed while idle is reopened once
            if self._streams is None:
                self._streams = await asyncio.open_connection(self.host, self.port)
            reader, writer = self._streams
            try:
                writer.write(head + body)
                status_line = await reader.readline()
                if not status_line:
                    raise ConnectionResetError("closed")
                length, close = 0, False
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.decode("latin-1").partition(":")
                    if name.lower() == "content-length":
                        length = int(value)
                    elif name.lower() == "connection" and value.strip().lower() == "close":
                        close = True
                payload = await reader.readexactly(length)
                if close:
                    await self.aclose()
                return _RawResponse(int(status_line.split()[1]), payload)
            except (ConnectionError, asyncio.IncompleteReadError):
                await self.aclose()
                if attempt:
                    raise

    async def aclose(self) -> None:
        if self._streams is not None:
            self._streams[1].close()
            self._streams = None


async def _client(http: httpx.AsyncClient | RawClient, n: int, stop_at: float, budget: list[int], out: dict) -> None:
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
            kind = f"http {response.status_code}"
        except (httpx.HTTPError, OSError, asyncio.IncompleteReadError) as error:
            ok, response, kind = False, None, type(error).__name__
        if not ok:  # say what failed: a 503 is back-pressure, a timeout or a 500 is a defect
            out["error_kinds"][kind] = out["error_kinds"].get(kind, 0) + 1
        seconds = time.perf_counter() - started
        out["latencies"].append(seconds)
        if ok:  # what the request cost beyond the retriever's own stages: the HTTP layer and its glue
            out["outside"].append(seconds - response.json()["timings_ms"]["total"] / 1000)
        out["errors"] += 0 if ok else 1
        out["overloaded"] += int(response is not None and response.status_code == 503)


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()


def _tree(root: int) -> list[int]:
    """``root`` and its live descendants (a multi-process server's workers: STITCH_SERVE_WORKERS)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                children.setdefault(int(_stat(int(entry.name))[1]), []).append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def _cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU seconds so far of process ``pid`` and its live descendants (Linux /proc), else None."""
    if pid is None:
        return None
    try:
        total = 0
        for member in _tree(pid):
            try:
                fields = _stat(member)
            except OSError:  # exited meanwhile
                continue
            total += int(fields[11]) + int(fields[12])
        return total / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, TypeError):
        return None


async def _load(url: str, key: str, *, clients: int, seconds: float, requests: int, pid: int | None = None,
                client: str = "raw") -> dict:
    """One level of closed-loop clients. With the server's ``pid``, also its CPU milliseconds per request:
    on a shared box that figure moves far less with other jobs' load than RPS and latency do."""
    out: dict = {"latencies": [], "outside": [], "errors": 0, "overloaded": 0, "error_kinds": {}}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {key}"}, limits=limits,
                                 timeout=30) as http:
        conns = [RawClient(url, key) if client == "raw" else http for _ in range(clients)]
        await conns[0].post("/v1/context", json={"query": "warm", "principal": {"id": "w", "roles": ["sales"]}})
        started, cpu_before, load_before = time.monotonic(), _cpu_seconds(pid), time.process_time()
        budget = [requests]
        await asyncio.gather(*(_client(conns[n], n, started + seconds, budget, out) for n in range(clients)))
        elapsed, cpu_after, load_after = time.monotonic() - started, _cpu_seconds(pid), time.process_time()
        for conn in conns:
            if isinstance(conn, RawClient):
                await conn.aclose()
    lat = sorted(out["latencies"])
    pct = (lambda q: round(lat[min(len(lat) - 1, int(q * len(lat)))] * 1000, 1)) if lat else (lambda q: None)
    return {
        "clients": clients, "requests": len(lat), "errors": out["errors"], "of_which_503": out["overloaded"],
        "error_kinds": out["error_kinds"],
        "seconds": round(elapsed, 2),
        "rps": round(len(lat) / elapsed, 1), "p50_ms": pct(0.50), "p95_ms": pct(0.95), "p99_ms": pct(0.99),
        "mean_ms": round(statistics.fmean(lat) * 1000, 1) if lat else None,
        "outside_retriever_p50_ms": round(statistics.median(out["outside"]) * 1000, 1) if out["outside"] else None,
        "server_cpu_ms_per_request": round((cpu_after - cpu_before) * 1000 / len(lat), 2)
        if lat and cpu_before is not None and cpu_after is not None else None,
        "load_generator_cpu_ms_per_request": round((load_after - load_before) * 1000 / len(lat), 2) if lat else None,
        "client": client,
    }


def _scifact_manifest(folder: Path, docs: int, skip: int) -> Path:
    corpus = next(p / "shared/benchmarks/retrieval/scifact/corpus.jsonl" for p in ROOT.parents
                  if (p / "shared/benchmarks").is_dir())
    folder.mkdir(parents=True, exist_ok=True)
    with corpus.open() as src, (folder / "corpus.jsonl").open("w") as dst:
        for n, line in enumerate(src):
            if skip <= n < skip + docs:
                dst.write(line)
    manifest = folder / "scifact.yaml"
    manifest.write_text(f"source: sf{skip}\nkind: records\npath: corpus.jsonl\nid_field: _id\ntitle_field: title\n"
                        "text_fields: [text]\nacl: {public: true}\n")
    return manifest


async def _ingest(url: str, key: str, manifest: Path) -> dict:
    auth = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=url, headers=auth, timeout=30) as http:
        started = time.monotonic()
        job = (await http.post("/v1/ingest/jobs", json={"manifests": [str(manifest)]})).json()["job_id"]
        while (state := (await http.get(f"/v1/ingest/jobs/{job}")).json())["status"] in ("queued", "running"):
            await asyncio.sleep(0.2)
    seconds = time.monotonic() - started
    chunks = (state.get("report") or {}).get("chunks", 0)
    return {"status": state["status"], "chunks": chunks, "seconds": round(seconds, 1),
            "chunks_per_s": round(chunks / seconds, 1)}


async def _beside(url: str, key: str, clients: int, seconds: float, manifests: tuple[Path, Path]) -> dict:
    """Ingest alone, queries alone, then both at once (queries for as long as the second job runs)."""
    alone = await _ingest(url, key, manifests[0])
    queries_alone = await _load(url, key, clients=clients, seconds=seconds, requests=1 << 30)
    job = asyncio.create_task(_ingest(url, key, manifests[1]))
    queries_with = await _load(url, key, clients=clients, seconds=max(seconds, alone["seconds"] * 0.8),
                               requests=1 << 30)
    with_queries = await job
    return {"ingest_alone": alone, "ingest_with_queries": with_queries, "queries_alone": queries_alone,
            "queries_with_ingest": queries_with,
            "ingest_rate_ratio": round(with_queries["chunks_per_s"] / max(alone["chunks_per_s"], 1e-9), 2),
            "query_rps_ratio": round(queries_with["rps"] / max(queries_alone["rps"], 1e-9), 2)}


def _levels(url: str, key: str, clients: list[int], seconds: float, requests: int, pid: int | None,
            client: str) -> dict:
    levels = [asyncio.run(_load(url, key, clients=c, seconds=seconds, requests=requests, pid=pid, client=client))
              for c in clients]
    base = next((lv for lv in levels if lv["clients"] == 1), None)
    for level in levels:
        if base:
            level["rps_vs_1_client"] = round(level["rps"] / base["rps"], 2)
    return {"levels": levels}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 50])
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--requests", type=int, default=1 << 30, help="upper bound on requests per level")
    parser.add_argument("--manifest", type=Path, default=ROOT / "fixtures" / "manifests" / "wiki.yaml")
    parser.add_argument("--ingest-beside", type=int, default=0, metavar="DOCS")
    parser.add_argument("--client", choices=("raw", "httpx"), default="raw",
                        help="load generator: raw keep-alive sockets (cheap) or httpx (what earlier figures used)")
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
            if args.ingest_beside:
                pair = tuple(_scifact_manifest(Path(scratch) / "feeds" / f"sf{i}", args.ingest_beside, i * args.ingest_beside)
                             for i in range(2))
                result = asyncio.run(_beside(url, key, args.clients[0], args.seconds, pair))
            else:
                result = _levels(url, key, args.clients, args.seconds, args.requests, proc.pid if proc else None,
                                 args.client)
        finally:
            if proc is not None:
                proc.send_signal(signal.SIGINT)
                proc.wait(timeout=30)
    result.update(cpus=os.cpu_count(), load_avg_1m=round(os.getloadavg()[0], 2), endpoint="POST /v1/context",
                  corpus=str(args.manifest.name), backend=os.environ.get("STITCH_ENCODER_BACKEND", "default"),
                  serve_workers=os.environ.get("STITCH_SERVE_WORKERS", "default"))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
