"""Documents of the generated corpus: the builder that accumulates records, files, ACLs, dates and
gold mentions, and one function per kind of document (account, contacts, tickets, e-mails, contract).
"""

from __future__ import annotations

import random
import zlib
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from evaluation import corpus_files as F
from evaluation.corpus_layout import EMAIL_ROLES, Layout
from evaluation.corpus_names import Org, Person, make_orgs, make_people, slug
from evaluation.corpus_text import IDPS, MONTHS, Issue, contract_sections


LAWS = ("the Netherlands", "England and Wales", "Germany", "the State of New York", "Sweden", "France")
CAPS = ("the fees paid in the 12 months before the claim", "two times the annual fees", "1,000,000 EUR",
        "the fees paid in the 24 months before the claim", "500,000 EUR", "three times the annual fees")


class Builder:
    """Accumulates records, files, gold and ACLs while the world is written (one per run)."""

    def __init__(self, root: Path, seed: int, n_orgs: int) -> None:
        self.root, self.seed, self.rng = root, seed, random.Random(seed)
        self.layout = Layout.choose(self.rng)
        self.orgs = make_orgs(self.rng, n_orgs)
        self.staff, self.contacts = make_people(self.rng, self.orgs)
        self.accounts: list[dict] = []
        self.contact_rows: list[dict] = []
        self.tickets: list[dict] = []
        self.acl: dict[str, frozenset[str]] = {}
        self.dates: dict[str, str] = {}
        self.date_source: dict[str, str] = {}
        self.contracts = 0
        self.mentions: list[tuple[str, str, str, str]] = []
        self.queries: list[dict] = []
        self.canaries: list[dict] = []
        self.account_of: dict[str, str] = {}
        self.story: dict[str, dict] = {}

    # --- helpers ---------------------------------------------------------------------------------

    def day(self, start: date, span: int) -> date:
        return start + timedelta(days=self.rng.randrange(span))

    def mention(self, surface: str, source: str, doc_id: str, key: str) -> None:
        self.mentions.append((surface, source, doc_id, key))

    def doc(self, doc_id: str, roles: list[str], when: date | datetime, source: str) -> None:
        """Register a document: who may see it, and its own date (``source``: header|metadata|field|mtime)."""
        self.acl[doc_id] = frozenset(roles)
        self.dates[doc_id] = when.date().isoformat() if isinstance(when, datetime) else when.isoformat()
        self.date_source[doc_id] = source

    def visible(self, doc_id: str, roles: tuple[str, ...]) -> bool:
        allowed = self.acl[doc_id]
        return "public" in allowed or bool(allowed & set(roles))

    def ask(self, kind: str, question: str, roles: tuple[str, ...], docs: list[str], pages: dict | None = None,
            entity: str = "") -> None:
        relevant = [d for d in docs if self.visible(d, roles)]
        hidden = [d for d in docs if not self.visible(d, roles)]
        row = {"id": f"g{len(self.queries) + 1:03d}", "kind": kind, "question": question, "roles": list(roles),
               "relevant": relevant, "hidden_best": hidden}
        if pages:
            row["pages"] = {d: p for d, p in pages.items() if d in relevant}
        if entity:
            row["entity_key"] = entity
        self.queries.append(row)

    def contacts_of(self, org: Org) -> list[Person]:
        return [p for p in self.contacts if p.org_key == org.key]

    def owner(self, org: Org, title: str = "Account Executive") -> Person:
        pool = [p for p in self.staff if p.title == title] or self.staff
        return pool[zlib.crc32(f"{org.key}|{title}".encode()) % len(pool)]


# --- records ---------------------------------------------------------------------------------------


def add_account(b: Builder, org: Org, index: int) -> None:
    rid = f"A-{1001 + index}"
    b.account_of[org.key] = f"crm:{rid}"
    owner = b.owner(org)
    modified = b.day(date(2026, 8, 1), 100)
    story = b.story.get(org.key, {})
    visible = ["sales", "support", "finance", "legal", "exec"] if org.kind != "lookalike" else ["sales", "exec"]
    name = b.rng.choice([org.abbreviation, org.shouty, org.base]) if org.kind == "customer" else org.base
    if org.kind == "customer":
        description = (f"{org.legal} runs {b.rng.randrange(3, 30)} depots around {org.city} on Route Planner "
                       f"({story['seats']} seats). Industry: {org.industry}.")
        notes = (f"Renewal at risk after {story['issue'].symptom} (ticket {story['ticket']}). The customer asks "
                 f"for a {story['discount']} percent discount and {story['ask']}. Owner {owner.name}.")
    elif org.kind == "subsidiary":
        description = f"Subsidiary of {org.parent} in {org.city}. Contracts separately from its parent."
        notes = f"Own Master Services Agreement; data processing agreement signed. Owner {owner.name}."
    else:
        description = f"{org.legal}, {org.city}: a {org.industry} prospect. Not related to {story['twin']}."
        notes = f"Intro call held; partnership idea only. Do not confuse with the customer {story['twin']}."
    b.accounts.append({
        "record_id": rid, "name": name, "legal_name": org.legal, "parent_company": org.parent,
        "industry": org.industry, "region": org.city, "owner": owner.name,
        "tier": {"customer": "Enterprise", "subsidiary": "Enterprise", "lookalike": "Prospect"}[org.kind],
        "renewal_date": story.get("renewal", ""), "description": description, "notes": notes,
        "visible_to": ";".join(visible), b.layout.updated_field: modified.isoformat()})
    b.doc(f"crm:{rid}", visible, modified, "field")
    for surface in (org.legal, *([org.parent] if org.parent else []), *([story["twin"]] if "twin" in story else [])):
        key = org.key if surface == org.legal else _key_of(b, surface)
        b.mention(surface, "crm", f"crm:{rid}", key)
    b.mention(owner.name, "crm", f"crm:{rid}", owner.key)


def _key_of(b: Builder, legal: str) -> str:
    return next(o.key for o in b.orgs if o.legal == legal)


def add_contacts(b: Builder, org: Org) -> None:
    for person in b.contacts_of(org):
        rid = f"C-{2001 + len(b.contact_rows)}"
        company = b.rng.choice([org.suffix_variant, org.base, org.legal, org.abbreviation])
        modified = b.day(date(2026, 6, 1), 150)
        visible = ["sales", "support", "exec"]
        b.contact_rows.append({
            "record_id": rid, "name": person.name, "person": person.name, "company": company,
            "job_title": person.title, "email": person.email,
            "notes": f"{person.title} at {company}. Main contact for {b.rng.choice(['renewals', 'operations', 'IT'])}.",
            "visible_to": visible, b.layout.updated_field: modified.isoformat()})
        b.doc(f"crm:{rid}", visible, modified, "field")
        b.mention(company, "crm", f"crm:{rid}", org.key)
        b.mention(person.name, "crm", f"crm:{rid}", person.key)
        if org.kind != "lookalike":
            b.ask("single", f"Who is the {person.title} at {org.base}?", ("sales",), [f"crm:{rid}"], entity=org.key)


def _fill(text: str, b: Builder, org: Org) -> str:
    r = b.rng
    months = f"{r.choice(MONTHS)} and {r.choice(MONTHS)}"
    return text.format(city=org.city, n=r.randrange(120, 4000), m=r.randrange(2, 40), k=r.randrange(20, 90),
                       idp=r.choice(IDPS), code=r.randrange(1000, 9999), months=months)


def add_tickets(b: Builder, org: Org, issues: list[Issue]) -> list[str]:
    ids = []
    for issue in issues:
        tid = f"T-{5001 + len(b.tickets)}"
        customer = b.rng.choice([org.acronym or org.base, org.typo, org.base.lower(), org.shouty, org.suffix_variant])
        contact = (b.contacts_of(org) or [None])[0]
        requester = f"{contact.name.split()[-1]}, {contact.name.split()[0]}" if contact and b.rng.random() < 0.3 \
            else (contact.name if contact else "IT helpdesk")
        assignee = b.owner(org, "Support Engineer")
        updated = b.day(date(2026, 5, 1), 190)
        visible = ["support", "finance", "exec"] if issue.billing else ["support", "engineering", "exec"]
        b.tickets.append({
            "ticket_id": tid, "subject": issue.subject.format(city=org.city), "customer": customer,
            "requester": requester, "assignee": assignee.name, "priority": b.rng.choice(["P1", "P2", "P3"]),
            "status": b.rng.choice(["closed", "resolved", "open"]), "description": _fill(issue.description, b, org),
            "resolution": _fill(issue.resolution, b, org), "visible_to": visible, "updated_at": updated.isoformat()})
        b.doc(f"tickets:{tid}", visible, updated, "field")
        b.mention(customer, "tickets", f"tickets:{tid}", org.key)
        if contact:
            b.mention(requester, "tickets", f"tickets:{tid}", contact.key)
        b.mention(assignee.name, "tickets", f"tickets:{tid}", assignee.key)
        ids.append(f"tickets:{tid}")
    return ids


# --- files -----------------------------------------------------------------------------------------


def add_email(b: Builder, team: str, org: Org, sender: Person, to: Person, subject: str, body: str,
           sent: datetime) -> str:
    rel = b.layout.email_path(team, sent, f"{org.slug}-{slug(subject)[:28].strip('-')}")
    F.write_email(b.root / "manifests" / "email" / rel, sender=f"{sender.name} <{sender.email}>",
                  to=f"{to.name} <{to.email}>", subject=subject, sent=sent, body=body,
                  message_id=f"{sent:%Y%m%d%H%M}-{org.slug}-{team}")
    b.doc(f"email:{rel}", EMAIL_ROLES[team], sent, "header")
    b.mention(sender.name, "email", f"email:{rel}", sender.key)
    b.mention(to.name, "email", f"email:{rel}", to.key)
    return f"email:{rel}"


def sent_at(b: Builder) -> datetime:
    day = b.day(date(2026, 8, 15), 95)
    return datetime(day.year, day.month, day.day, b.rng.randrange(7, 19), b.rng.randrange(60), tzinfo=timezone.utc)


def customer_emails(b: Builder, org: Org, ticket_ids: list[str]) -> dict[str, str]:
    story, contact, ae = b.story[org.key], b.contacts_of(org)[0], b.owner(org)
    signature = b.rng.choice([org.acronym, org.suffix_variant, org.typo])
    surface = b.rng.choice([org.base, org.abbreviation, org.typo])
    body = (f"Hi {ae.name.split()[0]},\n\nAfter the {story['issue'].symptom} we reported in {story['ticket']}, "
            f"{surface} cannot renew on the current terms. We ask for a {story['discount']} percent discount and "
            f"{story['ask']} before we sign the renewal.\n\nKind regards,\n{contact.name}\n{contact.title}, {signature}\n")
    doc = add_email(b, "sales", org, contact, ae, f"Renewal of our Route Planner subscription ({surface})", body, sent_at(b))
    b.mention(surface, "email", doc, org.key)
    b.mention(signature, "email", doc, org.key)
    docs = {"renewal": doc}
    if b.rng.random() < 0.6:
        engineer = b.owner(org, "Support Engineer")
        ticket = next(t for t in b.tickets if f"tickets:{t['ticket_id']}" == ticket_ids[0])
        body = (f"Dear {contact.name.split()[0]},\n\nan update on {ticket['ticket_id']} ({ticket['subject']}) for "
                f"{org.base}: {ticket['resolution']}\n\nBest regards,\n{engineer.name}\nNorthwind Support\n")
        docs["support"] = add_email(b, "support", org, engineer, contact, f"Update on {ticket['ticket_id']}", body, sent_at(b))
        b.mention(org.base, "email", docs["support"], org.key)
    return docs


def add_contract(b: Builder, org: Org) -> tuple[str, dict]:
    story = b.story[org.key]
    effective = date.fromisoformat(story["effective"])
    values = {"legal": org.legal, "city": org.city, "effective": f"{effective:%-d %B %Y}",
              "end": story["end_text"], "renewal": story["renewal_text"], "fees": f"{story['fees']:,}",
              "seats": story["seats"], "payment_days": b.rng.choice((30, 45, 60)), "notice": b.rng.choice((30, 60, 90)),
              "cap": story["cap"], "law": b.rng.choice(LAWS)}
    sections = contract_sections(values)
    breaks = b.rng.choice(((3, 7), (4, 8), (3, 6, 9)))  # where pages start: moves the renewal clause
    pages = [sections[i:j] for i, j in zip((0, *breaks), (*breaks, len(sections)), strict=True)]
    page_of = {h: n for n, page in enumerate(pages, start=1) for h, _ in page}
    b.contracts += 1
    ext = "docx" if b.contracts % 4 == 0 else "pdf"  # every fourth contract is a Word file
    rel = b.layout.contract_path(org.slug, org.legal, effective.year, ext)
    created = datetime(effective.year, effective.month, effective.day, 9, tzinfo=timezone.utc) - timedelta(days=3)
    path, title = b.root / "manifests" / "contracts" / rel, f"Master Services Agreement - {org.legal}"
    if ext == "pdf":
        F.write_pdf(path, title, pages, created, "Northwind Systems B.V. - Master Services Agreement")
    else:
        F.write_docx(path, title, sections, created)
    doc_id = f"contracts:{rel}"
    b.doc(doc_id, ["legal", "finance", "sales", "exec"], created, "metadata")
    b.mention(org.legal, "contracts", doc_id, org.key)
    return doc_id, ({"renewal": [page_of["Term and renewal"]], "cap": [page_of["Limitation of liability"]]}
                    if ext == "pdf" else {})
