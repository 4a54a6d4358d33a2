"""People across systems on the real Enron sample: person entities, their aliases, and a hand-labelled spot check.

    .venv/bin/python bench/people.py                      # build the manifest, `stitch ingest` into a scratch dir
    .venv/bin/python bench/people.py --data-dir DIR       # reuse a data dir that already holds the ingest

Writes a records manifest over ``--csv`` (default: ../shared/benchmarks/…/emails.csv, never copied into the
project) with ``entity_fields: person: [from_addr]``, runs ``stitch ingest`` with a scratch STITCH_DATA_DIR,
then reads the registry: how many person entities, aliases that are not clean names (a line break, ``mailto``,
a trailing "on"), and for each of the 20 labelled people below whether every variant written in the sample
resolves, as a query, to one entity of its own. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from entity_resolution.linker import RegistryLinker  # noqa: E402
from entity_resolution.registry import RegistryStore  # noqa: E402
from entity_resolution.views import list_entities  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CSV = ROOT.parent.parent / "shared/benchmarks/enterprise/enron_subset_allen_arnold/emails.csv"
MANIFEST = """source: enron
kind: records
path: {csv}
id_field: message_id
title_field: subject
text_fields: [from_addr, to_addr, body]
updated_field: date
entity_fields:
  person: [from_addr]
acl:
  default: [staff]
"""
TOKENS = ("role:staff",)
# Hand-labelled from the sample's text (grep of each surname): every way each person is written there.
# Mailboxes that spell no name (pallen@, jarnold@, kholst@, msagel@, slafontaine@) are included on purpose.
PEOPLE = {
    "Phillip Allen": ["phillip.allen@enron.com", "Phillip K Allen/HOU/ECT", "Phillip K Allen/HOU/ECT@ECT",
                      "Phillip_K_Allen@enron.com", "Phillip.K.Allen@enron.com", "phillip.k.allen@enron.com",
                      "Phillip Allen", "Allen, Phillip K.", "pallen@enron.com"],
    "John Arnold": ["john.arnold@enron.com", "John.Arnold@enron.com", "John Arnold/HOU/ECT", "John Arnold",
                    "jarnold@enron.com"],
    "Sarah Novosel": ["sarah.novosel@enron.com", "Sarah Novosel@ENRON", "Sarah Novosel/Corp/Enron@ENRON",
                      "Sarah Novosel"],
    "George Rahal": ["george.rahal@acnpower.com", "George Rahal", "George Rahal at ACN Power"],
    "Alan Comnes": ["alan.comnes@enron.com", "Alan Comnes/PDX/ECT@ECT", "Alan Comnes"],
    "Keith Holst": ["keith.holst@enron.com", "Keith Holst", "kholst@enron.com"],
    "Steven Kean": ["steven.kean@enron.com", "Steven J Kean/NA/Enron@Enron", "Steven J Kean/NA/Enron"],
    "Jeff Dasovich": ["jeff.dasovich@enron.com", "Jeff Dasovich/NA/Enron@Enron", "Jeff Dasovich"],
    "Mike Grigsby": ["mike.grigsby@enron.com", "Mike Grigsby"],
    "Joe Hartsoe": ["joe.hartsoe@enron.com", "Joe Hartsoe/Corp/Enron@ENRON", "Joe Hartsoe/Corp/Enron"],
    "Richard Shapiro": ["richard.shapiro@enron.com", "Richard Shapiro/NA/Enron@Enron"],
    "Ray Alvarez": ["ray.alvarez@enron.com", "Ray Alvarez@ENRON", "Ray Alvarez/NA/Enron@ENRON"],
    "Stephanie Miller": ["stephanie.miller@enron.com", "Stephanie Miller/Corp/Enron@ENRON"],
    "James Steffes": ["james.steffes@enron.com", "James D Steffes/NA/Enron@Enron"],
    "Susan Mara": ["susan.mara@enron.com", "Susan J Mara/NA/Enron@ENRON"],
    "Richard Sanders": ["richard.sanders@enron.com", "Richard B Sanders/HOU/ECT@ECT"],
    "Christi Nicolay": ["christi.nicolay@enron.com", "Christi L Nicolay/HOU/ECT@ECT"],
    "Michael Byrne": ["michael.byrne@americas.bnpparibas.com", "Michael Byrne"],
    "Mark Sagel": ["Mark Sagel", "msagel@home.com"],
    "Steve LaFontaine": ["Steve LaFontaine/GlobalCo@GlobalCo", "slafontaine@globalp.com"],
}
_UNCLEAN = re.compile(r"\n|mailto|\[|\]|\s(on|wrote|Sent)$")


def ingest(csv: Path, data_dir: Path) -> None:
    folder = Path(tempfile.mkdtemp(prefix="people-manifest-"))
    (folder / "enron.yaml").write_text(MANIFEST.format(csv=csv.resolve()), encoding="utf-8")
    env = {**os.environ, "STITCH_DATA_DIR": str(data_dir), "PYTHONPATH": str(ROOT)}
    subprocess.run([str(ROOT / ".venv/bin/stitch"), "ingest", str(folder / "enron.yaml")], env=env, check=True,
                   stdout=subprocess.DEVNULL)


def spot_check(linker: RegistryLinker) -> dict:
    """Per labelled person: the entity each variant resolves to; resolved = all one entity, not shared."""
    found = {name: [[e.entity_id for e in linker.entities_in_query(v, acl_tokens=TOKENS)] for v in variants]
             for name, variants in PEOPLE.items()}
    owner: dict[str, set[str]] = {}
    for name, ids in found.items():
        for entity_id in {i for hit in ids for i in hit}:
            owner.setdefault(entity_id, set()).add(name)
    report = {}
    for name, ids in found.items():
        singles = [hit[0] for hit in ids if len(hit) == 1]
        main = max(set(singles), key=singles.count) if singles else None
        ok = [v for v, hit in zip(PEOPLE[name], ids) if hit == [main] and owner.get(main) == {name}]
        report[name] = {"variants": len(ids), "resolved": len(ok),
                        "missed": [v for v in PEOPLE[name] if v not in ok]}
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=CSV)
    parser.add_argument("--data-dir", type=Path, help="a data dir that already holds this ingest (skips it)")
    args = parser.parse_args()
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="people-data-"))
    if not args.data_dir:
        ingest(args.csv, data_dir)
    linker = RegistryLinker(RegistryStore(data_dir / "entities.sqlite3"))
    people = [e for e in list_entities(linker.store, acl_tokens=None, limit=10_000) if e.type == "person"]
    aliases = [a for e in people for a in e.aliases]
    checks = spot_check(linker)
    print(json.dumps({
        "data_dir": str(data_dir), "person_entities": len(people),
        "aliases": len(aliases), "unclean_aliases": [a for a in aliases if _UNCLEAN.search(a)],
        "examples": {e.name: list(e.aliases)[:8] for e in people[:6]},
        "labelled_people": len(checks), "people_fully_resolved": sum(c["missed"] == [] for c in checks.values()),
        "variants": sum(c["variants"] for c in checks.values()),
        "variants_resolved": sum(c["resolved"] for c in checks.values()),
        "missed": {n: c["missed"] for n, c in checks.items() if c["missed"]},
    }, indent=2))
    linker.store.close()


if __name__ == "__main__":
    main()
