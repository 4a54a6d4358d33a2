"""Benchmark: resolve N synthetic organisation/person records with realistic variation; prints JSON.

    .venv/bin/python bench/entities.py --records 100000 [--records 1000000] [--seed 1 --seed 2]

Reports wall and CPU seconds (worker processes included), the 1-minute load average before and after
resolving (a shared machine's wall time says little), peak RSS, blocking comparisons vs quadratic, and
pairwise P/R/F1 against the generator's truth (each record knows which base entity it was derived from).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rapidfuzz.distance import OSA  # noqa: E402

from entity_resolution.parallel import cores  # noqa: E402
from entity_resolution.records import Mention, mention_key, nodes_from_mentions  # noqa: E402
from entity_resolution.resolve import resolve_nodes  # noqa: E402

_SYL = ("ka lo ri ven tor ax el mi qua zen dor fi ly nex tra sol bri gan hol per vi ro cus mar ti bel cor dan "
        "fen gor hux jin kel lum mon nor pax quin rus sten tal ub vor wex yar zol bo cra dru elm fro").split()
_WORDS = "Systems Logistics Analytics Foods Energy Capital Health Media Robotics Labs Partners Pharma Motors".split()
_SUFFIX = ["Inc", "Inc.", "Corp", "Corporation", "Ltd", "LLC", "GmbH", "S.A.", "AG", "Holdings", "Co.", ""]
_FIRST = "anna ben carla david elena felix grace henry iris jonas karen liam maria noah olga paul rita sam tara".split()
_LAST = "smith novak garcia muller rossi kowalski dubois jensen silva tanaka okafor larsen weber costa".split()


def _base_names(n: int, rng: random.Random) -> list[tuple[str, str]]:
    seen, out = set(), []
    while len(out) < n:
        if rng.random() < 0.7:
            core = "".join(rng.choice(_SYL) for _ in range(rng.randint(2, 3))).capitalize()
            name = f"{core} {rng.choice(_WORDS)}" if rng.random() < 0.6 else core
            kind = "organization"
        else:
            last = rng.choice(_LAST) + "".join(rng.choice(_SYL) for _ in range(rng.randint(0, 2)))
            name, kind = f"{rng.choice(_FIRST).title()} {last.title()}", "person"
        if (kind, name.lower()) not in seen:
            seen.add((kind, name.lower()))
            out.append((kind, name))
    return out


def _typo(text: str, rng: random.Random) -> str:
    i = rng.randrange(1, max(len(text) - 1, 2))
    return text[:i] + text[i + 1:] if rng.random() < 0.5 else text[:i] + text[i:i + 2][::-1] + text[i + 2:]


def _variant(kind: str, name: str, rng: random.Random) -> str:
    if kind == "person":
        first, last = name.split(" ", 1)
        form = rng.random()
        text = f"{last}, {first}" if form < 0.3 else name.upper() if form < 0.4 else name
    else:
        suffix = rng.choice(_SUFFIX)
        text = f"{'The ' if rng.random() < 0.05 else ''}{name} {suffix}".strip()
        text = text.upper() if rng.random() < 0.15 else text.lower() if rng.random() < 0.15 else text
    return _typo(text, rng) if rng.random() < 0.15 else text


def synthetic_dataset(count: int, seed: int = 7) -> tuple[list[Mention], list[int], list[tuple[str, str]]]:
    """``count`` mentions of about count/3 base entities, each mention's true base index, and the bases."""
    rng = random.Random(seed)
    bases = _base_names(max(count // 3, 1), rng)
    mentions, truth = [], []
    for _ in range(count):
        index = rng.randrange(len(bases))
        kind, name = bases[index]
        mentions.append(Mention(kind, _variant(kind, name, rng)))
        truth.append(index)
    return mentions, truth, bases


def lookalike_bases(bases: list[tuple[str, str]]) -> int:
    """How many base entities have another base of the same type one edit away (normalised keys, word order
    ignored): their typo variants are indistinguishable by name alone, so the truth there is ambiguous."""
    keys = {(kind, " ".join(sorted(mention_key(kind, name).split()))) for kind, name in bases}
    by_deletion: dict[tuple[str, str], list[str]] = {}
    for kind, key in keys:  # one-deletion neighbourhood (SymSpell): candidates, confirmed by OSA below
        for variant in {key} | {key[:i] + key[i + 1:] for i in range(len(key))}:
            by_deletion.setdefault((kind, variant), []).append(key)
    close = set()
    for (kind, _), group in by_deletion.items():
        for i, a in enumerate(group):
            for b in group[i + 1:]:
                if a != b and OSA.distance(a, b, score_cutoff=1) <= 1:
                    close.update(((kind, a), (kind, b)))
    return len(close)


def _pairs(groups: Counter) -> int:
    return sum(n * (n - 1) // 2 for n in groups.values())


def pairwise_scores(predicted: list[str], truth: list[int]) -> dict:
    """Pairwise precision/recall/F1 from cluster co-membership counts (no pair enumeration)."""
    tp = _pairs(Counter(zip(predicted, truth)))
    pred, true = _pairs(Counter(predicted)), _pairs(Counter(truth))
    precision, recall = tp / max(pred, 1), tp / max(true, 1)
    return {"precision": round(precision, 4), "recall": round(recall, 4),
            "f1": round(2 * precision * recall / max(precision + recall, 1e-9), 4)}


def _cpu_seconds() -> float:
    """CPU time of this process (all threads) plus its finished children (``entity_resolution.parallel``)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def run(count: int, seed: int = 7) -> dict:
    t0 = time.perf_counter()
    mentions, truth, bases = synthetic_dataset(count, seed)
    load_before = os.getloadavg()[0]
    t1 = time.perf_counter()
    cpu = _cpu_seconds()
    nodes = nodes_from_mentions(mentions)
    resolution = resolve_nodes(nodes)
    t2 = time.perf_counter()
    cpu = _cpu_seconds() - cpu
    predicted = [resolution.key_to_entity.get((m.type, m.key), f"empty:{i}") for i, m in enumerate(mentions)]
    return {
        "records": count, "seed": seed, "distinct_names": len(nodes), "entities": len(resolution.entities),
        "true_entities": len(set(truth)), "lookalike_bases": lookalike_bases(bases), "comparisons": resolution.scored_pairs,
        "quadratic_name_pairs": resolution.blocking.quadratic, "oversized_blocks": resolution.blocking.oversized_blocks,
        "generate_s": round(t1 - t0, 1), "resolve_s": round(t2 - t1, 1),  # wall seconds: the goal's measure
        "resolve_cpu_s": round(cpu, 1),  # every thread of this process and of its worker processes
        "cores": cores(), "load_avg_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],  # before, after
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        **pairwise_scores(predicted, truth),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, action="append", help="record counts (repeatable)")
    parser.add_argument("--seed", type=int, action="append", help="generator seeds (repeatable; default 7)")
    args = parser.parse_args()
    results = [run(n, seed) for n in args.records or [100_000] for seed in args.seed or [7]]
    print(json.dumps({"benchmark": "entities", "cpus": os.cpu_count(), "results": results}, indent=2))


if __name__ == "__main__":
    main()
