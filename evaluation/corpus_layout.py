"""Folder layouts of the generated corpus (chosen per seed) and the manifests that describe them.

The same data lands in differently shaped trees (team folders, ``Sales_Mailbox/2026-10/…``,
``customers/b/blue-ridge-logistics/…``), and the manifests' ACL rules follow the tree, so nothing
in the pipeline can rely on one folder convention.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import yaml

TEAMS_ALL = ["sales", "support", "engineering", "finance", "legal", "hr", "exec"]
EMAIL_ROLES = {
    "sales": ["sales", "exec"], "support": ["support", "engineering", "exec"], "finance": ["finance", "exec"],
    "legal": ["legal", "exec"], "exec": ["exec"], "all-staff": TEAMS_ALL,
}
WIKI_ROLES = {
    "finance": ["finance", "exec"], "hr": ["hr", "exec"], "sales": ["sales", "exec"], "legal": ["legal", "exec"],
    "drafts": [], "public": ["public"],
}


@dataclass(frozen=True)
class Layout:
    """How one seed's systems arrange their files and name their fields."""

    email: str          # flat | mailbox | nested
    contracts: str      # by-customer | by-year | alphabetical
    wiki: str           # flat | teams | cased
    accounts_format: str  # csv | jsonl
    updated_field: str  # the CRM's modification-date column

    @classmethod
    def choose(cls, rng: random.Random) -> Layout:
        return cls(rng.choice(("flat", "mailbox", "nested")), rng.choice(("by-customer", "by-year", "alphabetical")),
                   rng.choice(("flat", "teams", "cased")), rng.choice(("csv", "jsonl")),
                   rng.choice(("modified_at", "last_modified")))

    # --- paths ---------------------------------------------------------------------------------

    def email_dir(self, team: str) -> str:
        return {"flat": team, "mailbox": f"{team.title()}_Mailbox", "nested": f"mailboxes/{team}"}[self.email]

    def email_path(self, team: str, sent: datetime, name: str) -> str:
        if self.email == "mailbox":
            return f"{self.email_dir(team)}/{sent:%Y-%m}/{name}.eml"
        return f"{self.email_dir(team)}/{sent:%Y-%m-%d}-{name}.eml"

    def contract_path(self, org_slug: str, legal: str, year: int, ext: str) -> str:
        if self.contracts == "by-year":
            return f"{year}/{legal} MSA.{ext}"
        if self.contracts == "alphabetical":
            return f"customers/{org_slug[0]}/{org_slug}/master-services-agreement.{ext}"
        return f"{org_slug}/{org_slug}-msa-{year}.{ext}"

    @property
    def restricted_dir(self) -> str:
        return "legal-hold" if self.contracts == "by-year" else "restricted"

    def wiki_dir(self, team: str) -> str:
        return {"flat": team, "teams": f"teams/{team}", "cased": team.title()}[self.wiki]

    def wiki_path(self, team: str, name: str, ext: str) -> str:
        sub = "account-plans/" if self.wiki == "cased" and name.endswith("-account-plan") else ""
        return f"{self.wiki_dir(team)}/{sub}{name}.{ext}"

    # --- manifests -----------------------------------------------------------------------------

    def manifests(self) -> dict[str, dict]:
        """Manifest mappings per source (written as ``manifests/<source>.yaml``)."""
        email_rules = [{"match": f"{self.email_dir(t)}/**", "roles": r} for t, r in EMAIL_ROLES.items()]
        wiki_rules = [{"match": f"{self.wiki_dir(t)}/**", "roles": r} for t, r in WIKI_ROLES.items() if r != ["public"]]
        wiki_public = [{"match": f"{self.wiki_dir('public')}/**", "roles": ["public"]}]
        return {
            "crm": {"source": "crm", "kind": "records", "path": "crm", "id_field": "record_id", "title_field": "name",
                    "text_fields": ["legal_name", "description", "notes", "company", "job_title", "email"],
                    "updated_field": self.updated_field,
                    "entity_fields": {"organization": ["legal_name", "parent_company", "company"],
                                      "person": ["person", "owner"]},
                    "acl": {"default": ["sales", "exec"], "field": "visible_to"},
                    "uri_template": "https://crm.northwind.example/records/{record_id}"},
            "tickets": {"source": "tickets", "kind": "records", "path": "tickets/tickets.jsonl",
                        "id_field": "ticket_id", "title_field": "subject",
                        "text_fields": ["customer", "description", "resolution"], "updated_field": "updated_at",
                        "entity_fields": {"organization": ["customer"], "person": ["requester", "assignee"]},
                        "acl": {"default": ["support", "engineering", "exec"], "field": "visible_to"},
                        "uri_template": "https://support.northwind.example/tickets/{ticket_id}"},
            "email": {"source": "email", "kind": "files", "path": "email", "include": ["**/*.eml"],
                      "acl": {"default": ["exec"], "rules": email_rules},
                      "uri_template": "https://mail.northwind.example/archive/{relpath}"},
            "wiki": {"source": "wiki", "kind": "files", "path": "wiki", "include": ["**/*.md", "**/*.html"],
                     "acl": {"default": TEAMS_ALL, "rules": wiki_rules + wiki_public},
                     "uri_template": "https://wiki.northwind.example/{relpath}"},
            "contracts": {"source": "contracts", "kind": "files", "path": "contracts",
                          "include": ["**/*.pdf", "**/*.docx"],
                          "acl": {"default": ["legal", "finance", "sales", "exec"],
                                  "rules": [{"match": f"{self.restricted_dir}/**", "roles": ["legal"]}]},
                          "uri_template": "https://contracts.northwind.example/{relpath}"},
        }

    def write_manifests(self, root: Path) -> None:
        for source, manifest in self.manifests().items():
            text = f"# Generated corpus: {source} (layout {self})\n" + yaml.safe_dump(manifest, sort_keys=False)
            (root / "manifests" / f"{source}.yaml").write_text(text, encoding="utf-8")
