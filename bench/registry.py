"""Entity-registry hot paths: per-query name lookup, `/v1/entities` list and show, at a given registry size.

    .venv/bin/python bench/registry.py --docs 20000

Links ``--docs`` synthetic records (one organisation each, drawn from ``--docs / 4`` distinct names, under
one of 8 roles) through the real RegistryLinker into a scratch SQLite registry, then times, for a one-role
principal: ``entities_in_query`` (the lookup every /v1/context request makes), ``list_entities`` with and
without ``q``, and ``entity_view``. Prints one JSON object (p50 / p95 ms over ``--repeat`` calls).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.models import Document  # noqa: E402
from entity_resolution.linker import RegistryLinker  # noqa: E402
from entity_resolution.registry import RegistryStore  # noqa: E402
from entity_resolution.views import entity_view, list_entities  # noqa: E402

SYLLABLES = "ka lo mi ra tu ve zo ne fi sa do gru bel cor tan vix pra dun mor lis".split()
SUFFIXES = ["Corporation", "Inc", "GmbH", "Systems", "Labs", "Holdings", "Partners", "Logistics"]


def _name(rng: random.Random) -> str:
    word = "".join(rng.choice(SYLLABLES) for _ in range(3)).capitalize()
    return f"{word} {rng.choice(SUFFIXES)}"


def _timed(fn, repeat: int) -> dict:  # noqa: ANN001
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return {"p50_ms": round(statistics.median(times), 2), "p95_ms": round(times[int(0.95 * (len(times) - 1))], 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    names = [_name(rng) for _ in range(max(1, args.docs // 4))]
    with tempfile.TemporaryDirectory(prefix="stitch-registry-") as scratch:
        linker = RegistryLinker(RegistryStore(Path(scratch) / "entities.sqlite3"))
        started = time.perf_counter()
        for i in range(args.docs):
            name = names[i % len(names)]
            linker.link_document(Document(f"crm:{i}", "crm", name, f"Account note {i}.", acl=(f"role:r{i % 8}",),
                                          entity_mentions=(("organization", name),)))
        build = time.perf_counter() - started
        tokens = ("public", "role:r3", "user:bench")
        query = f"renewal terms for {names[3]} next quarter"
        some = linker.entities_in_query(names[3], acl_tokens=tokens)
        entity_id = some[0].entity_id if some else None
        linker.gazetteer  # noqa: B018 - loaded once, as in a serving process
        result = {
            "docs": args.docs, "distinct_names": len(names), "build_s": round(build, 1),
            "query_entities": _timed(lambda: linker.entities_in_query(query, acl_tokens=tokens), args.repeat),
            "list_all": _timed(lambda: list_entities(linker.store, acl_tokens=tokens, limit=20), args.repeat),
            "list_q": _timed(lambda: list_entities(linker.store, query=names[5][:5], acl_tokens=tokens, limit=20),
                             args.repeat),
            "show": _timed(lambda: entity_view(linker.store, entity_id, acl_tokens=tokens), args.repeat)
            if entity_id else None,
            "cpus": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2),
        }
        linker.store.close()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
