"""Tallying probes and leaks per ACL class and per endpoint; the JSON report and its human summary."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field

from evaluation.leaks_judge import Leak
from evaluation.leaks_probes import Outcome

MAX_EXAMPLES = 40


@dataclass
class Tally:
    """Running counts while probes run (one instance per run)."""

    probes: int = 0
    per_endpoint: Counter = field(default_factory=Counter)
    statuses: Counter = field(default_factory=Counter)
    leaks: list[Leak] = field(default_factory=list)
    leaking_probes: int = 0
    unrefused: int = 0  # a refusal was due (foreign or invalid role) but the answer was 200
    raw_shown: int = 0  # redaction: values shown raw to readers allowed to see them
    raw_withheld: list[str] = field(default_factory=list)  # ... and values hidden from such readers

    def add(self, endpoint: str, outcome: Outcome, leaks: list[Leak]) -> None:
        self.probes += 1
        self.per_endpoint[endpoint] += 1
        self.statuses[str(outcome.status)] += 1
        self.leaks += leaks
        self.leaking_probes += bool(leaks)
        self.unrefused += outcome.refused_expected and outcome.status == 200
        self.raw_shown += outcome.raw_shown
        self.raw_withheld += outcome.raw_withheld


def build_report(tally: Tally, *, classes: list[str], corpus: dict, seconds: dict, command: str = "") -> dict:
    by_class: dict[str, Counter] = defaultdict(Counter)
    kinds: dict[str, Counter] = defaultdict(Counter)
    for leak in tally.leaks:
        by_class[leak.cls][leak.endpoint] += 1
        kinds[leak.cls][leak.kind] += 1
    examples, seen = [], set()
    for leak in tally.leaks:  # one example per (class, endpoint, kind, item) so each distinct leak shows
        key = (leak.cls, leak.endpoint, leak.kind, leak.item)
        if key not in seen and len(examples) < MAX_EXAMPLES:
            seen.add(key)
            examples.append(asdict(leak))
    return {
        "probes": tally.probes,
        "leaks": len(tally.leaks),
        "leaking_probes": tally.leaking_probes,
        "distinct_leaks": len({(x.cls, x.endpoint, x.kind, x.item) for x in tally.leaks}),
        "leaks_by_class": {c: sum(by_class[c].values()) for c in sorted(set(classes) | set(by_class))},
        "leaks_by_endpoint": dict(sorted(Counter(x.endpoint for x in tally.leaks).items())),
        "leak_matrix": {c: dict(sorted(e.items())) for c, e in sorted(by_class.items())},
        "leak_kinds": {c: dict(sorted(k.items())) for c, k in sorted(kinds.items())},
        "probes_by_endpoint": dict(sorted(tally.per_endpoint.items())),
        "statuses": dict(sorted(tally.statuses.items())),
        "unrefused_assertions": tally.unrefused,
        "redaction": {"raw_shown_to_allowed": tally.raw_shown, "withheld_from_allowed": len(tally.raw_withheld),
                      "withheld_examples": sorted(set(tally.raw_withheld))[:10]},
        "corpus": corpus,
        "seconds": seconds,
        "command": command,
        "examples": examples,
    }


def format_leaks_report(report: dict) -> str:
    lines = [
        f"stitch eval leaks: {report['probes']:,} probes in {report['seconds'].get('probes', 0):.1f} s "
        f"(total {report['seconds'].get('total', 0):.1f} s); "
        f"{report['leaks']:,} leaks in {report['leaking_probes']:,} probes ({report['distinct_leaks']} distinct)",
        "",
        f"{'ACL class':<24} {'leaks':>7}  endpoints",
    ]
    for cls, count in report["leaks_by_class"].items():
        where = ", ".join(f"{e} {n}" for e, n in report["leak_matrix"].get(cls, {}).items())
        lines.append(f"{cls:<24} {count:>7}  {where}")
    lines += ["", "probes per endpoint: " + ", ".join(f"{e} {n}" for e, n in report["probes_by_endpoint"].items()),
              "statuses: " + ", ".join(f"{s} {n}" for s, n in report["statuses"].items()),
              f"refusals due but answered 200: {report['unrefused_assertions']}"]
    if redaction := report.get("redaction"):
        lines.append(f"redacted values shown raw to allowed readers: {redaction['raw_shown_to_allowed']}, "
                     f"withheld from them: {redaction['withheld_from_allowed']}")
    if report["examples"]:
        lines += ["", "examples:"]
        lines += [f"  [{x['cls']}] {x['endpoint']} {x['kind']} {x['item']!r} <- {x['request'][:140]}"
                  for x in report["examples"][:20]]
    return "\n".join(lines)
