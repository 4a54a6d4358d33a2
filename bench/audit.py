"""Audit trail throughput: how long ``record()`` holds the caller (the event loop) and how fast the
writer thread chains records to disk. Prints JSON.

    .venv/bin/python bench/audit.py [--records 20000]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from governance.audit import AuditTrail  # noqa: E402
from governance.audit_review import verify_trail  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=20_000)
    n = parser.parse_args().records
    record = {"event": "request", "request_id": "0" * 32, "key_id": "abc123", "principal_id": "alice",
              "roles": ["sales"], "doc_ids": [f"wiki:doc-{i}.md" for i in range(8)], "status": 200}
    with tempfile.TemporaryDirectory() as tmp:
        trail = AuditTrail(Path(tmp) / "audit.jsonl")
        waits = []
        started = time.perf_counter()
        for _ in range(n):
            t0 = time.perf_counter()
            trail.record(record)
            waits.append(time.perf_counter() - t0)
        queued = time.perf_counter() - started
        trail.flush()
        written = time.perf_counter() - started
        t0 = time.perf_counter()
        result = verify_trail(trail.path)
        verified = time.perf_counter() - t0
    waits.sort()
    print(json.dumps({
        "records": n, "ok": result.ok,
        "record_call_us": {"p50": round(waits[n // 2] * 1e6, 1), "p99": round(waits[int(n * 0.99)] * 1e6, 1)},
        "queued_per_s": round(n / queued), "written_per_s": round(n / written), "verified_per_s": round(n / verified),
    }))


if __name__ == "__main__":
    main()
