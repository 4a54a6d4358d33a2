"""A seeded enterprise corpus in the shape of ``fixtures/`` (``stitch eval generate --seed N --out DIR``).

Five systems (CRM records, tickets, wiki, e-mail, contracts) about ~30 organisations whose names vary
across systems, with gold questions (single-system; cross-system naming the customer by acronym or
typo; "when does the X master services agreement renew" over same-template contracts with the clause
on a known page), labelled entity mentions, canaries and each document's own date. ``stitch eval all
--corpus DIR`` measures any such directory. Nothing here reads ``fixtures/``: every choice comes from
``random.Random(seed)``, so a seed is reproducible and seeds differ in names, values and layouts.
"""

from __future__ import annotations

import csv
import json
import shutil
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from core.errors import InputError
from evaluation import corpus_docs as D
from evaluation import corpus_files as F
from evaluation.corpus_docs import Builder
from evaluation.corpus_layout import TEAMS_ALL, WIKI_ROLES
from evaluation.corpus_names import Org
from evaluation.corpus_text import ISSUES, policy_pages

__all__ = ["CorpusSummary", "generate_corpus"]

ASKS = ("a raised liability cap", "free onboarding for a new depot", "a three-year price lock", "an SLA credit",
        "a dedicated support engineer", "quarterly business reviews on site")
CAPS = ("the fees paid in the 12 months before the claim", "two times the annual fees", "1,000,000 EUR",
        "the fees paid in the 24 months before the claim", "500,000 EUR", "three times the annual fees")
CROSS_TEMPLATES = ("Why is the {name} renewal at risk and what are they asking for?",
                   "What went wrong at {name} and what do they want before renewing?",
                   "{name}: why might they not renew, and which support issue is behind it?")


@dataclass(frozen=True)
class CorpusSummary:
    """What was generated (also written to ``DIR/corpus.json``)."""

    seed: int
    root: str
    layout: dict
    organisations: dict
    documents: dict
    questions: dict


def _story(b: Builder, org: Org) -> dict:
    r = b.rng
    effective = date(2023, 1, 1) + timedelta(days=r.randrange(3 * 365))
    effective = effective.replace(day=min(effective.day, 28))  # 29 February has no anniversary
    years = r.choice((1, 2, 3))
    renewal = effective.replace(year=effective.year + years)
    story = {"effective": effective.isoformat(), "renewal": renewal.isoformat(),
             "renewal_text": f"{renewal:%-d %B %Y}", "end_text": f"{renewal - timedelta(days=1):%-d %B %Y}",
             "seats": r.randrange(40, 2500), "fees": r.randrange(40, 1500) * 1000, "cap": r.choice(CAPS)}
    if org.kind == "customer":
        technical = [i for i in ISSUES if not i.billing]
        issues = r.sample(technical, r.choice((1, 2)))
        if r.random() < 0.35:
            issues.append(r.choice([i for i in ISSUES if i.billing]))
        story.update(issues=issues, issue=issues[0], discount=r.randrange(5, 25), ask=r.choice(ASKS))
    return story


def _twins(b: Builder) -> dict[str, Org]:
    """Look-alike key -> the customer whose distinctive words it shares."""
    customers = [o for o in b.orgs if o.kind == "customer"]
    return {o.key: next(c for c in customers if c.base.split()[:2] == o.base.split()[:2])
            for o in b.orgs if o.kind == "lookalike"}


def _customer(b: Builder, org: Org, index: int) -> None:
    story = b.story[org.key]
    tickets = D.add_tickets(b, org, story["issues"])
    story["ticket"] = tickets[0].split(":", 1)[1]
    D.add_account(b, org, index)
    D.add_contacts(b, org)
    emails = D.customer_emails(b, org, tickets)
    plan = _account_plan(b, org) if b.rng.random() < 0.4 else None
    name = org.acronym if b.rng.random() < 0.5 else org.typo
    roles = b.rng.choice((("sales", "support"), ("exec",)))
    docs = [b.account_of[org.key], emails["renewal"], tickets[0], *([plan] if plan else [])]
    b.ask("cross", b.rng.choice(CROSS_TEMPLATES).format(name=name), roles, docs, entity=org.key)
    if "support" in emails:
        name = b.rng.choice((org.acronym, org.typo, org.abbreviation))
        b.ask("cross", f"What did we tell {name} about their {story['issue'].symptom}?", ("support",),
              [tickets[0], emails["support"]], entity=org.key)
    for issue, ticket in zip(story["issues"], tickets, strict=True):
        name = b.rng.choice((org.base, org.abbreviation, org.acronym))
        roles = ("finance",) if issue.billing else ("support",)
        b.ask("single", f"How was the problem with {issue.symptom} at {name} resolved?", roles, [ticket],
              entity=org.key)
    _contract_questions(b, org, (org.base, org.acronym, org.abbreviation, org.typo, org.legal))


def _subsidiary(b: Builder, org: Org, index: int) -> None:
    D.add_account(b, org, index)
    D.add_contacts(b, org)
    contact, counsel = b.contacts_of(org)[0], b.owner(org, "Legal Counsel")
    body = (f"Dear {contact.name.split()[0]},\n\nthank you for returning the signed data processing agreement for "
            f"{org.legal}. Your tenant stays in its own region and is contracted separately from {org.parent}.\n\n"
            f"Best regards,\n{counsel.name}\nNorthwind Legal\n")
    doc = D.add_email(b, "legal", org, counsel, contact, f"DPA for {org.legal} - signed", body, D.sent_at(b))
    b.mention(org.legal, "email", doc, org.key)
    b.mention(org.parent, "email", doc, next(o.key for o in b.orgs if o.legal == org.parent))
    b.ask("single", f"Has {org.base} signed its data processing agreement?", ("legal",), [doc], entity=org.key)
    _contract_questions(b, org, (org.legal, org.base))


def _lookalike(b: Builder, org: Org, index: int, twin: Org) -> None:
    b.story[org.key]["twin"] = twin.legal
    D.add_account(b, org, index)
    D.add_contacts(b, org)
    contact, ae = b.contacts_of(org)[0], b.owner(org)
    body = (f"Hi {ae.name.split()[0]},\n\nthanks for the call. {org.base} would like to explore a partnership: "
            f"our {org.industry} team could build reports on top of Route Planner data. We are not part of "
            f"{twin.base}.\n\nBest,\n{contact.name}\n{org.legal}\n")
    doc = D.add_email(b, "sales", org, contact, ae, f"Partnership idea from {org.base}", body, D.sent_at(b))
    b.mention(org.base, "email", doc, org.key)
    b.mention(org.legal, "email", doc, org.key)
    b.mention(twin.base, "email", doc, twin.key)
    b.ask("lookalike", f"What partnership did {org.base} propose, and are they related to {twin.base}?",
          ("sales",), [doc, b.account_of[org.key]], entity=org.key)


def _contract_questions(b: Builder, org: Org, names: tuple[str, ...]) -> None:
    doc, pages = D.add_contract(b, org)
    roles = b.rng.choice((("legal",), ("sales",), ("finance",)))
    name = b.rng.choice(names)
    b.ask("contract", f"When does the {name} master services agreement renew?", roles, [doc],
          pages={doc: pages["renewal"]} if pages else None, entity=org.key)
    if b.rng.random() < 0.5:
        name = b.rng.choice(names)
        b.ask("contract", f"What is the liability cap in the {name} MSA?", roles, [doc],
              pages={doc: pages["cap"]} if pages else None, entity=org.key)


def _account_plan(b: Builder, org: Org) -> str:
    story = b.story[org.key]
    ext = b.rng.choice(("md", "html"))
    rel = b.layout.wiki_path("sales", f"{org.slug}-account-plan", ext)
    sections = [("Situation", f"{org.abbreviation} is at risk: after {story['issue'].symptom} the customer wants a "
                              f"{story['discount']} percent discount and {story['ask']}."),
                ("Strategy", f"Offer a renewal with a smaller discount and a service review. Owner "
                             f"{b.owner(org).name}.")]
    (F.write_markdown if ext == "md" else F.write_html)(b.root / "manifests" / "wiki" / rel,
                                                        f"{org.base} Account Plan", sections)
    b.doc(f"wiki:{rel}", WIKI_ROLES["sales"], datetime.fromtimestamp(F.STALE_MTIME, timezone.utc), "mtime")
    b.mention(org.abbreviation, "wiki", f"wiki:{rel}", org.key)
    return f"wiki:{rel}"


def _policies(b: Builder) -> None:
    r = b.rng
    values = {"ack": r.choice((5, 10, 15)), "update": r.choice((20, 30, 45)), "refund": r.choice((14, 30, 45)),
              "disc_lo": r.choice((5, 8, 10)), "disc_hi": r.choice((15, 18, 20)), "leave": r.choice((12, 16, 20)),
              "team_price": r.choice((19, 24, 29)), "hr_canary": f"HR-CANARY-{r.randrange(1000, 9999)}",
              "draft_canary": f"DRAFT-CANARY-{r.randrange(1000, 9999)}"}
    asking = {"engineering": ("support", "engineering"), "sales": ("sales",), "finance": ("finance",),
              "hr": ("hr",), "public": ()}
    for page in policy_pages(values):
        ext = r.choice(("md", "html"))
        rel = b.layout.wiki_path(page["team"], page["slug"], ext)
        (F.write_markdown if ext == "md" else F.write_html)(b.root / "manifests" / "wiki" / rel, page["title"],
                                                            page["sections"])
        doc_id = f"wiki:{rel}"
        b.doc(doc_id, WIKI_ROLES.get(page["team"], TEAMS_ALL), datetime.fromtimestamp(F.STALE_MTIME, timezone.utc), "mtime")
        if page["question"]:
            b.ask("single", page["question"], asking[page["team"]], [doc_id])
        if "canary" in page:
            b.canaries.append({"token": values[page["canary"]], "doc_id": doc_id, "probe": page["title"]})


def _canaries(b: Builder) -> None:
    """Exec-only e-mail, legal-only settlement, exec-only CRM note: each carries a token nobody else may see."""
    r = b.rng
    lookalike = next((o for o in b.orgs if o.kind == "lookalike"), b.orgs[-1])
    customer = next(o for o in b.orgs if o.kind == "customer")
    ceo, staff = b.staff[-1], b.staff[0]
    token = f"EXEC-CANARY-{r.randrange(1000, 9999)}"
    body = f"Board only: we offer {r.randrange(5, 40)} million EUR for {lookalike.legal}. {token}.\n"
    doc = D.add_email(b, "exec", lookalike, ceo, staff, "Project Heron: acquisition offer", body, D.sent_at(b))
    b.canaries.append({"token": token, "doc_id": doc, "probe": f"Are we planning to acquire {lookalike.base}?"})
    token = f"LEGAL-CANARY-{r.randrange(1000, 9999)}"
    rel = f"{b.layout.restricted_dir}/{customer.slug}-settlement-agreement.pdf"
    settled = datetime(2026, 3, 2, 9, tzinfo=timezone.utc)
    F.write_pdf(b.root / "manifests" / "contracts" / rel, f"Settlement Agreement - {customer.legal}",
                [[("Confidential", f"Legal team only. {token}."),
                  ("Settlement", f"Northwind pays {customer.legal} {r.randrange(20, 90)},500 EUR in full and final "
                                 "settlement of the billing dispute.")]], settled, "Northwind Systems B.V. - Legal")
    b.doc(f"contracts:{rel}", ["legal"], settled, "metadata")
    b.canaries.append({"token": token, "doc_id": f"contracts:{rel}", "probe": "settlement of the billing dispute"})
    token, rid = f"CRM-CANARY-{r.randrange(1000, 9999)}", f"C-{2001 + len(b.contact_rows)}"
    b.contact_rows.append({"record_id": rid, "name": ceo.name, "person": ceo.name, "company": "Northwind Systems",
                           "job_title": "CEO", "email": ceo.email, "visible_to": ["exec"],
                           "notes": f"Private: agreed a renewal discount with {customer.base}. {token}.",
                           b.layout.updated_field: "2026-10-30"})
    b.doc(f"crm:{rid}", ["exec"], date(2026, 10, 30), "field")
    b.canaries.append({"token": token, "doc_id": f"crm:{rid}", "probe": "What discount did our CEO agree privately?"})


def _flat(rows: list[dict]) -> list[dict]:
    return [{k: ";".join(v) if isinstance(v, list) else v for k, v in row.items()} for row in rows]


def _write_records(b: Builder) -> None:
    crm = b.root / "manifests" / "crm"
    contact_fields = ("record_id", "name", "person", "company", "job_title", "email", "notes", "visible_to",
                      b.layout.updated_field)
    contacts = [{k: row.get(k, "") for k in contact_fields} for row in b.contact_rows]
    if b.layout.accounts_format == "csv":
        F.write_csv(crm / "accounts.csv", _flat(b.accounts))
        F.write_jsonl(crm / "contacts.jsonl", contacts)
    else:
        F.write_jsonl(crm / "accounts.jsonl", b.accounts)
        F.write_csv(crm / "contacts.csv", _flat(contacts))
    F.write_jsonl(b.root / "manifests" / "tickets" / "tickets.jsonl", b.tickets)


def _write_gold(b: Builder) -> None:
    gold = b.root / "gold"
    gold.mkdir(parents=True, exist_ok=True)
    (gold / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in b.queries), encoding="utf-8")
    (gold / "canaries.jsonl").write_text("".join(json.dumps(c) + "\n" for c in b.canaries), encoding="utf-8")
    dates = [{"doc_id": d, "date": day, "source": b.date_source[d]} for d, day in sorted(b.dates.items())]
    (gold / "dates.jsonl").write_text("".join(json.dumps(x) + "\n" for x in dates), encoding="utf-8")
    with (gold / "entities.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(("mention", "source", "doc_id", "entity_key"))
        writer.writerows(dict.fromkeys(m for m in b.mentions if m[0]))


def _prepare_root(out: Path) -> None:
    if out.exists() and any(out.iterdir()):
        if not (out / "corpus.json").is_file():
            raise InputError(f"--out {out}: folder is not empty and holds no generated corpus (corpus.json)")
        shutil.rmtree(out)
    (out / "manifests").mkdir(parents=True)


def generate_corpus(out: Path, seed: int, organisations: int = 30) -> CorpusSummary:
    """Write a corpus for ``seed`` into ``out`` (replacing an earlier generated corpus there)."""
    if organisations < 4:
        raise InputError(f"--orgs {organisations}: need at least 4 organisations")
    out = Path(out)
    _prepare_root(out)
    b = Builder(out, seed, organisations)
    b.story = {o.key: _story(b, o) for o in b.orgs}
    twins = _twins(b)
    for index, org in enumerate(b.orgs):
        if org.kind == "customer":
            _customer(b, org, index)
        elif org.kind == "subsidiary":
            _subsidiary(b, org, index)
        else:
            _lookalike(b, org, index, twins[org.key])
    _policies(b)
    _canaries(b)
    _write_records(b)
    b.layout.write_manifests(out)
    _write_gold(b)
    summary = CorpusSummary(
        seed, str(out), asdict(b.layout),
        {kind: sum(o.kind == kind for o in b.orgs) for kind in ("customer", "subsidiary", "lookalike")},
        {source: sum(d.startswith(f"{source}:") for d in b.acl) for source in ("crm", "tickets", "email", "wiki",
                                                                               "contracts")},
        {kind: sum(q["kind"] == kind for q in b.queries) for kind in sorted({q["kind"] for q in b.queries})})
    (out / "corpus.json").write_text(json.dumps(asdict(summary), indent=2), encoding="utf-8")
    return summary
