"""Same packs before and after a latency change: every context pack, byte for byte, except its timings.

    # once, with the code before the change (e.g. an exported copy of main), on a fixed index:
    PYTHONPATH=/tmp/base .venv/bin/python -m bench.pack_identity --data IDX --out /tmp/before.jsonl
    # then with this code, on the same index (nothing here writes to it):
    .venv/bin/python -m bench.pack_identity --data IDX --out /tmp/after.jsonl --against /tmp/before.jsonl

Fixtures (the default): every gold question, canary probe and bench/api.py query, as its roles and as a
principal with no roles, at budgets 2000/150/60 tokens (60 and 150 cut passages). ``--beir DIR``: that
set's test queries on an index ``stitch eval retrieval`` built, at 2000 and 150 tokens. ``--data`` is
ingested first (fixture manifests) if empty. Prints a JSON summary; exits 1 if any pack differs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from api.render import context_pack_json
from bench.api import QUERIES
from core.models import Principal
from retrieval.context import ContextRequest

ROOT = Path(__file__).resolve().parent.parent
FIXTURE_BUDGETS = (2000, 150, 60)
BEIR_BUDGETS = (2000, 150)
VOLATILE = ("request_id", "timings_ms")  # differ on every call; generated_at is in "manifest"


def fixture_requests() -> list[ContextRequest]:
    gold = ROOT / "fixtures" / "gold"
    asked = [(q["question"], tuple(q["roles"])) for q in map(json.loads, (gold / "queries.jsonl").open())]
    asked += [(c["probe"], ("sales",)) for c in map(json.loads, (gold / "canaries.jsonl").open())]
    asked += [(q, tuple(roles)) for q, roles in QUERIES]
    return [ContextRequest(q, Principal(id="", roles=r), max_tokens=budget)
            for q, roles in asked for r in (roles, ("everyone",)) for budget in FIXTURE_BUDGETS]


def beir_requests(beir: Path) -> list[ContextRequest]:
    from evaluation.retrieval import _PRINCIPAL, load_beir

    data = load_beir(beir)
    queries = [data.queries[q] for q in data.qrels["test"] if q in data.queries]
    return [ContextRequest(q, _PRINCIPAL, max_tokens=budget) for q in queries for budget in BEIR_BUDGETS]


def _retriever(data: Path, beir: Path | None):  # noqa: ANN202 - retrieval.context.Retriever
    from api.services import Services
    from core.config import Settings

    if beir is not None:
        from evaluation.retrieval import eval_settings

        return Services(eval_settings(data)).retriever
    services = Services(Settings(data_dir=data))
    if not any(data.glob("*ledger*")):
        from ingest.manifest import load_manifest
        from ingest.pipeline import ingest_manifests

        manifests = sorted((ROOT / "fixtures" / "manifests").glob("*.yaml"))
        ingest_manifests([load_manifest(m) for m in manifests], services.ingest_context())
    return services.retriever


def pack_line(request: ContextRequest, pack_json: dict) -> str:
    """One pack as a canonical JSON line: the request, then the pack without its volatile fields."""
    body = {k: v for k, v in pack_json.items() if k not in VOLATILE}
    body["manifest"] = {k: v for k, v in body["manifest"].items() if k != "generated_at"}
    asked = {"query": request.query, "roles": list(request.principal.roles), "max_tokens": request.max_tokens}
    return json.dumps({"request": asked, "pack": body}, sort_keys=True, ensure_ascii=False)


def compare(lines: list[str], reference: list[str]) -> dict:
    """How many packs differ from the reference, and the first few requests that do."""
    differ = [json.loads(a)["request"] for a, b in zip(lines, reference) if a != b]
    return {"packs": len(lines), "reference_packs": len(reference), "differ": len(differ),
            "identical": not differ and len(lines) == len(reference), "first_differing": differ[:5]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="index (fixtures are ingested into it if empty)")
    parser.add_argument("--beir", type=Path, help="a BEIR set whose test queries to pack on --data (an eval index)")
    parser.add_argument("--out", type=Path, required=True, help="JSONL file of the packs")
    parser.add_argument("--against", type=Path, help="reference JSONL (an earlier --out) to compare with")
    args = parser.parse_args(argv)
    retriever = _retriever(args.data, args.beir)
    requests = beir_requests(args.beir) if args.beir else fixture_requests()
    lines = [pack_line(r, context_pack_json(retriever.context(r))) for r in requests]
    retriever.store.close()
    args.out.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    truncated = sum(json.loads(line)["pack"]["usage"]["truncated"] for line in lines)
    summary = {"packs": len(lines), "truncated": truncated}
    if args.against:
        summary = compare(lines, args.against.read_text(encoding="utf-8").splitlines()) | {"truncated": truncated}
    print(json.dumps(summary, indent=2))
    return 0 if summary.get("identical", True) else 1


if __name__ == "__main__":
    sys.exit(main())
