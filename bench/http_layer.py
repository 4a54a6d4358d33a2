"""What the HTTP layer alone costs per ``POST /v1/context``: the real app under uvicorn (in this
process), with the retriever replaced by one that returns the pack it computed once. What is left is
exactly the HTTP layer and its glue: uvicorn parsing, the edge middleware, key check, principal,
audit record, pack record, ledger lookup, serialisation, metrics (and a plain http.client caller).

    PYTHONPATH=. .venv/bin/python bench/http_layer.py --requests 300

Prints one JSON object: p10/p50 wall per request and process CPU per request over sequential
requests. CPU per request moves little with other jobs' load; compare trees in the same minute
(``PYTHONPATH=<other tree>`` runs that tree's app with this script).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

# Run as a script, this folder comes first on sys.path, and bench/api.py would shadow the api package;
# the tree under test comes from PYTHONPATH.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import uvicorn  # noqa: E402

from api.app import create_app  # noqa: E402
from api.keys import KeyStore  # noqa: E402
from api.services import Services  # noqa: E402
from core.config import Settings  # noqa: E402
from ingest.manifest import load_manifest  # noqa: E402
from ingest.pipeline import ingest_manifests  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


class _Canned:
    """The real retriever's first pack for every request (searches still go to the real one)."""

    def __init__(self, real) -> None:  # noqa: ANN001
        self.real, self.pack, self.search = real, None, real.search

    def context(self, request):  # noqa: ANN001, ANN201
        if self.pack is None:
            self.pack = self.real.context(request)
        return self.pack


def _serve(app, http: str, loop: str) -> tuple[uvicorn.Server, threading.Thread, int]:  # noqa: ANN001
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", access_log=False,
                                           http=http, loop=loop))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 300
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the server did not start")
        time.sleep(0.05)
    return server, thread, server.servers[0].sockets[0].getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--http", default="auto", help="uvicorn's parser: auto (httptools), h11")
    parser.add_argument("--loop", default="auto", help="uvicorn's loop: auto (uvloop), asyncio")
    parser.add_argument("--manifest", type=Path, default=ROOT / "fixtures" / "manifests" / "wiki.yaml")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="stitch-layer-") as scratch:
        settings = Settings(data_dir=Path(scratch))
        services = Services(settings)
        ingest_manifests([load_manifest(args.manifest)], services.ingest_context())
        key = KeyStore(settings.keys_path).create(scopes=("context",), roles=("*",), principals=("*",))
        services.retriever = _Canned(services.retriever)
        server, thread, port = _serve(create_app(settings, services=services), args.http, args.loop)
        connection = http.client.HTTPConnection("127.0.0.1", port)
        body = json.dumps({"query": "Q3 revenue forecast", "principal": {"id": "a", "roles": ["finance"]}})
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

        def one() -> float:
            started = time.perf_counter()
            connection.request("POST", "/v1/context", body, headers)
            response = connection.getresponse()
            response.read()
            assert response.status == 200, response.status
            return time.perf_counter() - started

        for _ in range(30):
            one()
        cpu = time.process_time()
        latencies = sorted(one() for _ in range(args.requests))
        cpu = time.process_time() - cpu
        server.should_exit = True
        thread.join(30)
    print(json.dumps({
        "endpoint": "POST /v1/context (canned pack)", "requests": args.requests, "http": args.http, "loop": args.loop,
        "p10_ms": round(latencies[len(latencies) // 10] * 1000, 2),
        "p50_ms": round(statistics.median(latencies) * 1000, 2),
        "process_cpu_ms_per_request": round(cpu * 1000 / args.requests, 2),
        "cpus": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2),
    }))


if __name__ == "__main__":
    main()
