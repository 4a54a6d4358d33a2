"""The seeded leak corpus: restricted, query-attractive documents with a canary per ACL class of issue 10.

Everything here is written by this module (no fixtures), so the oracle can judge each response from
the manifests and raw files alone. The corpus has two states: ``build_corpus`` writes the first one;
``apply_resync_changes`` deletes, narrows and breaks documents the way a steward's next export does.
The prober ingests the first state, applies the changes, re-syncs, and probes only the final state.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

PLAN_FILE = "leaks-plan.json"
ROLES = ("sales", "support", "finance", "legal", "hr", "exec", "engineering")
USERS = ("dana", "erin")
CANARY_PATTERN = r"CANARY-[A-Z]+-[0-9a-f]{6}"

_TOPICS = ("renewal pricing", "quarterly forecast", "incident review", "hiring plan", "vendor audit",
           "discount approval", "roadmap priorities", "churn analysis", "security patch", "board minutes",
           "compensation review", "contract dispute", "migration runbook", "budget variance", "launch checklist")
_NOUNS = ("pipeline", "ledger", "rollout", "escalation", "forecast", "clause", "invoice", "headcount", "backlog")
_VERBS = ("reviewed", "approved", "escalated", "postponed", "reworked", "signed off", "flagged", "summarised")
_SYLLABLES = ("vor", "lax", "quil", "zen", "tar", "mo", "bry", "keth", "ul", "dra", "nix", "ova", "pel", "surn")
_SUFFIXES = ("Holdings", "Biotech", "Partners", "Dynamics", "Capital", "Freight", "Labs")


@dataclass(frozen=True)
class Canary:
    """A unique token in one document; ``never``: nobody may ever read it (hidden text, outside files)."""

    token: str
    cls: str
    doc_id: str
    query: str
    never: bool = False


@dataclass(frozen=True)
class RedactedValue:
    """A value a redaction policy hides: only readers of ``doc_id`` holding one of ``roles`` may see it raw."""

    value: str
    rule: str
    roles: tuple[str, ...]
    doc_id: str


@dataclass
class CorpusPlan:
    """What the builder planted: canaries, secret entity names, each document's class, the queries."""

    canaries: list[Canary] = field(default_factory=list)
    entity_names: dict[str, str] = field(default_factory=dict)  # name -> ACL class
    doc_classes: dict[str, str] = field(default_factory=dict)  # doc id -> ACL class
    queries: list[str] = field(default_factory=list)
    outside_dir: str = ""  # a folder outside every source (symlink target, ingest-job probe)
    redacted: list[RedactedValue] = field(default_factory=list)

    def save(self, root: Path) -> None:
        body = {**asdict(self), "canaries": [asdict(c) for c in self.canaries]}
        (root / PLAN_FILE).write_text(json.dumps(body, indent=1), encoding="utf-8")

    @classmethod
    def load(cls, root: Path) -> "CorpusPlan":
        path = root / PLAN_FILE
        if not path.exists():
            return cls()
        raw = json.loads(path.read_text(encoding="utf-8"))
        redacted = [RedactedValue(r["value"], r["rule"], tuple(r["roles"]), r["doc_id"]) for r in raw.get("redacted", [])]
        return cls([Canary(**c) for c in raw["canaries"]], raw["entity_names"], raw["doc_classes"],
                   raw["queries"], raw.get("outside_dir", ""), redacted)


class _Writer:
    """Seeded text, tokens and names; records what it planted in the plan."""

    def __init__(self, root: Path, seed: int) -> None:
        self.root, self.rng, self.plan = root, random.Random(seed), CorpusPlan()
        self.outside = root.parent / f"{root.name}-outside"  # outside the corpus: no ingest root covers it
        self._names: set[str] = set()

    def token(self, cls: str) -> str:
        return f"CANARY-{cls.upper().replace('_', '')}-{self.rng.getrandbits(24):06x}"

    def name(self) -> str:
        while True:
            stem = "".join(self.rng.choice(_SYLLABLES) for _ in range(3)).capitalize()
            candidate = f"{stem} {self.rng.choice(_SUFFIXES)}"
            if candidate not in self._names:
                self._names.add(candidate)
                return candidate

    def prose(self, topic: str, sentences: int = 4) -> str:
        rng = self.rng
        return " ".join(
            f"The {topic} {rng.choice(_NOUNS)} was {rng.choice(_VERBS)} by the {rng.choice(ROLES)} team "
            f"after {rng.randint(2, 40)} days." for _ in range(sentences)
        )

    def canary(self, cls: str, doc_id: str, topic: str, *, never: bool = False) -> tuple[str, str]:
        """A token for ``doc_id`` and the text around it; the query names the topic, like a curious user."""
        token = self.token(cls)
        query = f"{topic} {self.rng.choice(_NOUNS)}"
        self.plan.canaries.append(Canary(token, cls, doc_id, query, never))
        self.plan.doc_classes.setdefault(doc_id, cls)
        self.plan.queries += [query, token]
        return token, f"{topic.capitalize()} notes, reference {token}. {self.prose(topic)}"

    def write(self, relpath: str | Path, text: str | bytes) -> Path:
        path = self.root / relpath  # an absolute ``relpath`` stays absolute
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
        return path

    def manifest(self, name: str, body: dict) -> None:
        self.write(f"{name}.yaml", yaml.safe_dump(body, sort_keys=False))


WIKI_RULES = [  # order matters (first match wins): tail-matching code would pick public/** for engineering/public/x
    {"match": "public/**", "roles": ["public"]},
    {"match": "sales/**", "roles": ["sales", "exec"]},
    {"match": "support/**", "roles": ["support", "exec"]},
    {"match": "finance/**", "roles": ["finance", "exec"]},
    {"match": "engineering/**", "roles": ["engineering", "exec"]},
    {"match": "drafts/**", "roles": []},
    {"match": "people/dana/**", "roles": ["user:dana"]},
]
NARROW_RULE = {"match": "sales/pipeline-*", "roles": ["exec"]}  # prepended in the re-sync


def _wiki(w: _Writer) -> None:
    folders = ["public", "sales", "support", "finance", "engineering"]
    for i in range(24):  # ordinary documents of every folder: the baseline class
        folder = folders[i % len(folders)]
        doc = f"wiki:{folder}/page-{i:02d}.md"
        _, text = w.canary("baseline", doc, w.rng.choice(_TOPICS))
        w.write(f"wiki/{doc.split(':', 1)[1]}", f"# {folder.capitalize()} page {i}\n\n{text}\n")
    planted = [  # (class, relpath, topic)
        ("nested_folders", "exec/sales/board-minutes.md", "board minutes falcon acquisition"),
        ("nested_folders", "engineering/public/credentials-rotation.md", "credentials rotation vault"),
        ("user_tokens", "people/dana/performance-review.md", "dana performance review"),
        ("invisible", "drafts/unreleased-pricing.md", "unreleased pricing draft"),
        ("deleted", "finance/layoffs-plan.md", "layoffs plan severance"),
        ("narrowed", "sales/pipeline-review.md", "pipeline review top deals"),
        ("narrowed_parse_failure", "sales/pipeline-forecast.md", "pipeline forecast commit"),
    ]
    for cls, rel, topic in planted:
        _, text = w.canary(cls, f"wiki:{rel}", topic)
        w.write(f"wiki/{rel}", f"# {topic.title()}\n\n{text}\n")
    secret = w.name()  # an entity name only in a finance page
    w.plan.entity_names[secret] = "entity_names"
    _, text = w.canary("entity_names", "wiki:finance/acquisition-target.md", "acquisition target shortlist")
    w.write("wiki/finance/acquisition-target.md", f"# Acquisition target\n\n{secret} is the target. {text}\n")
    w.plan.queries += [f"{secret} acquisition", secret.split()[0].lower()]
    _hidden_html(w)
    _symlink(w)
    w.manifest("wiki", {"source": "wiki", "kind": "files", "path": "wiki", "include": ["**/*.md", "**/*.html"],
                        "acl": {"default": ["exec"], "rules": WIKI_RULES}})


def _hidden_html(w: _Writer) -> None:
    doc = "wiki:support/escalation-howto.html"
    _, visible = w.canary("baseline", doc, "escalation howto support")
    hidden = [w.canary("hidden_html", doc, "escalation override instructions", never=True)[0] for _ in range(3)]
    w.write("wiki/support/escalation-howto.html", (
        f"<html><body><h1>Escalation howto</h1><p>{visible}</p>"
        f"<div style=\"display:none\">Escalation override instructions {hidden[0]}</div>"
        f"<p hidden>Escalation override instructions {hidden[1]}</p>"
        f"<span style=\"visibility: hidden\">Escalation override instructions {hidden[2]}</span>"
        "</body></html>"))


def _symlink(w: _Writer) -> None:
    outside = w.outside
    doc = "wiki:support/linked-secret.md"
    _, text = w.canary("symlink", doc, "root password escrow", never=True)
    target = w.write(outside / "escrow.md", f"# Root password escrow\n\n{text}\n")
    link = w.root / "wiki/support/linked-secret.md"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(target)
    w.plan.outside_dir = str(outside)
    # A file only an ingest job pointed outside every source could publish (confinement probe).
    _, text = w.canary("confinement", "jobs:outside/keys.md", "signing keys backup", never=True)
    w.write(outside / "keys.md", f"# Signing keys backup\n\n{text}\n")


def _email(w: _Writer) -> None:
    for team in ("sales", "support"):
        for i in range(4):
            rel = f"{team}/2026-10-{i + 1:02d}-update.eml"
            _, text = w.canary("baseline", f"email:{rel}", w.rng.choice(_TOPICS))
            w.write(f"email/{rel}", _eml(f"{team} update {i}", text))
    _, text = w.canary("nested_folders", "email:exec/sales/board.eml", "board vote merger terms")
    w.write("email/exec/sales/board.eml", _eml("Board vote on merger terms", text))
    rules = [{"match": "sales/**", "roles": ["sales", "exec"]}, {"match": "support/**", "roles": ["support", "exec"]}]
    w.manifest("email", {"source": "email", "kind": "files", "path": "email", "include": ["**/*.eml"],
                         "acl": {"default": ["exec"], "rules": rules}})


def _eml(subject: str, body: str) -> str:
    return (f"From: ops@example.com\nTo: team@example.com\nSubject: {subject}\n"
            f"Date: Mon, 12 Oct 2026 09:00:00 +0000\n\n{body}\n")


def _crm_row(w: _Writer, native: str, cls: str, visible_to: object, topic: str, company: str | None = None) -> dict:
    _, text = w.canary(cls, f"crm:{native}", topic)
    row = {"id": native, "title": f"{topic.title()} ({native})", "notes": text,
           "company": company or w.rng.choice(["Northbeam Freight", "Calder Mills"]), "visible_to": visible_to}
    if company:
        row["notes"] += f" Account: {company}."
    return row


def _crm(w: _Writer) -> None:
    rows = [_crm_row(w, f"C-{100 + i}", "baseline", w.rng.choice([["sales"], "sales;exec", ["support", "exec"]]),
                     w.rng.choice(_TOPICS)) for i in range(14)]
    named = {cls: w.name() for cls in ("entity_names", "role_strings", "deleted")}
    for name, cls in ((named["entity_names"], "entity_names"), (named["role_strings"], "role_strings"),
                      (named["deleted"], "deleted")):
        w.plan.entity_names[name] = cls
        w.plan.queries += [f"{name} renewal", name]
    rows += [
        _crm_row(w, "C-900", "entity_names", ["exec"], "takeover approach", named["entity_names"]),
        _crm_row(w, "C-901", "user_tokens", ["user:erin"], "erin private renewal"),
        _crm_row(w, "C-902", "role_strings", "sales, exec", "comma roles renewal"),
        _crm_row(w, "C-903", "role_strings", "exec public", "space roles settlement", named["role_strings"]),
        _crm_row(w, "C-904", "invisible", [], "empty acl escalation"),
        _crm_row(w, "C-905", "deleted", ["sales", "exec"], "privacy erasure request", named["deleted"]),
        _crm_row(w, "C-906", "narrowed", ["sales", "exec"], "renewal discount ceiling"),
        _crm_row(w, "C-907", "narrowed_parse_failure", ["sales", "support"], "churn risk account"),
    ]
    w.write("crm/accounts.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    w.manifest("crm", {"source": "crm", "kind": "records", "path": "crm/accounts.jsonl", "id_field": "id",
                       "title_field": "title", "text_fields": ["notes"],
                       "entity_fields": {"organization": ["company"]},
                       "acl": {"default": ["sales", "exec"], "field": "visible_to"}})


def _odd_manifests(w: _Writer) -> None:
    """Role strings in manifests themselves, and a source whose ACL is empty (deny by default)."""
    for source, default, cls in (("vault", [], "invisible"), ("oddroles", ["exec public"], "role_strings")):
        name = w.name()
        w.plan.entity_names[name] = cls
        rows = [{"id": f"V-{i}", "notes": w.canary(cls, f"{source}:V-{i}", f"{source} ledger entries")[1],
                 "company": name} for i in range(2)]
        w.write(f"{source}/rows.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
        w.manifest(source, {"source": source, "kind": "records", "path": f"{source}/rows.jsonl", "id_field": "id",
                            "text_fields": ["notes"], "entity_fields": {"organization": ["company"]},
                            "acl": {"default": default}})
        w.plan.queries += [name, f"{source} ledger entries"]


# The redaction class: a source whose policy hides values per role (email, phone, account: hr; IBAN: finance;
# card numbers: nobody). Its documents are visible to support, hr and finance alike, so the policy — not the
# ACL — is what keeps each value from a reader; values sit in text, titles and an entity field.
REDACT_POLICY = [
    {"detect": "email", "roles": ["hr"]},
    {"detect": "phone", "roles": ["hr"], "region": "NL"},
    {"detect": "iban", "roles": ["finance"]},
    {"detect": "card"},
    {"detect": "pattern", "name": "account", "pattern": r"ACCT-\d{6}", "roles": ["hr"]},
]
_REDACT_ROLES = {"email": ("hr",), "phone": ("hr",), "iban": ("finance",), "card": (), "account": ("hr",)}


def _iban(rng: random.Random) -> str:
    account = f"ABNA{rng.randint(0, 10**10 - 1):010d}"
    digits = "".join(str(int(c, 36)) for c in account + "NL00")
    return f"NL{98 - int(digits) % 97:02d}{account}"


def _card(rng: random.Random) -> str:
    body = "4" + "".join(str(rng.randint(0, 9)) for _ in range(14))
    total = sum(d - 9 if d > 9 else d for d in (int(c) * (1 if i % 2 else 2) for i, c in enumerate(reversed(body))))
    return body + str((10 - total % 10) % 10)


def _phone(rng: random.Random) -> str:
    import phonenumbers

    while True:
        number = "+316" + "".join(str(rng.randint(0, 9)) for _ in range(8))
        if phonenumbers.is_valid_number(phonenumbers.parse(number)):
            return number


def _redacted_values(w: _Writer, doc_id: str) -> dict[str, str]:
    """One unique value per rule for ``doc_id``, recorded in the plan (and asked for by curious users)."""
    values = {"email": f"{w.rng.choice(USERS)}.{w.rng.getrandbits(24):06x}@vorlax-mail.example",
              "phone": _phone(w.rng), "iban": _iban(w.rng), "card": _card(w.rng),
              "account": f"ACCT-{w.rng.randint(100000, 999999)}"}
    for rule, value in values.items():
        w.plan.redacted.append(RedactedValue(value, rule, _REDACT_ROLES[rule], doc_id))
    w.plan.queries += list(values.values())
    return values


def _redaction(w: _Writer) -> None:
    for i, topic in enumerate(("payroll correction", "vendor bank change", "customer refund call")):
        doc = f"hrdesk:cases/case-{i}.md"
        v = _redacted_values(w, doc)
        _, text = w.canary("redaction", doc, topic)
        w.write(f"hrdesk/cases/case-{i}.md", (
            f"# {topic.title()} {v['account']}\n\n{text}\nContact {v['email']} or call {v['phone']}. "
            f"Pay to {v['iban']}; the card on file is {v['card']}.\n"))
    w.manifest("hrdesk", {"source": "hrdesk", "kind": "files", "path": "hrdesk", "include": ["**/*.md"],
                          "acl": {"default": ["support", "hr", "finance"]}, "redact": REDACT_POLICY})
    rows = []
    for i in range(2):
        doc = f"payees:P-{i}"
        v = _redacted_values(w, doc)
        _, text = w.canary("redaction", doc, "payee onboarding")
        rows.append({"id": f"P-{i}", "title": f"Payee {v['account']}", "contact": v["email"],
                     "company": w.name(), "notes": f"{text} Reach {v['email']} / {v['phone']}, IBAN {v['iban']}, "
                                                    f"card {v['card']}."})
    w.write("payees/rows.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    w.manifest("payees", {"source": "payees", "kind": "records", "path": "payees/rows.jsonl", "id_field": "id",
                          "title_field": "title", "text_fields": ["notes"],
                          "entity_fields": {"organization": ["company"], "person": ["contact"]},
                          "acl": {"default": ["support", "hr", "finance"]}, "redact": REDACT_POLICY})


def build_corpus(root: Path, *, seed: int = 0) -> CorpusPlan:
    """Write the first state of the corpus (files, records, manifests, plan) under ``root``, plus a folder
    beside it (``<root>-outside``) that only a symlink or a confinement breach could reach."""
    w = _Writer(Path(root), seed)
    _wiki(w)
    _email(w)
    _crm(w)
    _odd_manifests(w)
    _redaction(w)
    w.plan.queries = sorted(set(w.plan.queries + list(_TOPICS)))
    w.plan.save(w.root)
    return w.plan


def apply_resync_changes(root: Path) -> None:
    """The next export: a page and a record deleted, ACLs narrowed, a narrowed page and record that fail to read."""
    root = Path(root)
    (root / "wiki/finance/layoffs-plan.md").unlink()
    manifest = yaml.safe_load((root / "wiki.yaml").read_text())
    manifest["acl"]["rules"] = [NARROW_RULE, *manifest["acl"]["rules"]]
    (root / "wiki.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    (root / "wiki/sales/pipeline-forecast.md").write_bytes(b"# Pipeline\n\n\xff\xfe\x80 not text any more \xc3\x28")
    path = root / "crm/accounts.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    kept = []
    for row in rows:
        if row["id"] == "C-905":
            continue
        if row["id"] == "C-906":
            row["visible_to"] = ["exec"]
        if row["id"] == "C-907":
            row["visible_to"], row["notes"] = ["exec"], ""  # narrowed, and now fails (no text)
        kept.append(row)
    path.write_text("".join(json.dumps(r) + "\n" for r in kept))
