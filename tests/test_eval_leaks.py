"""``stitch eval leaks``: the oracle's semantics, the judge, a bounded prober run against the real app,
and the prober itself caught lying: a store that drops the ACL filter and a registry view that ignores
tokens must both show up as leaks."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from evaluation.leaks import prepare_lab, probe_lab
from evaluation.leaks_corpus import ROLES, USERS, apply_resync_changes, build_corpus
from evaluation.leaks_judge import EntityMap, Judge
from evaluation.leaks_oracle import AccessOracle, KeyGrant, acl_tokens, glob_regex
from evaluation.leaks_probes import ENDPOINTS

# Every ACL class of issue 10 has canaries in the generated corpus.
CLASSES = {"nested_folders", "user_tokens", "role_strings", "invisible", "deleted", "narrowed",
           "narrowed_parse_failure", "entity_names", "symlink", "hidden_html", "confinement", "baseline",
           "redaction"}
# Classes that still leak on main while other helpers land their fixes (the prober found each of them on
# 840df65). Shrink this set as fixes land: a class outside it that leaks fails the suite. Fixed so far:
# hidden_html, narrowed, nested_folders, role_strings, symlink, confinement, jobs.
STILL_OPEN: set[str] = set()  # db4ccfd: 0 leaks in 10,000 probes


@pytest.fixture(scope="module")
def lab(encoder):
    lab = prepare_lab(seed=7, encoder=encoder)
    yield lab
    lab.close()


def test_globs_are_anchored_at_the_source_root():
    sales, public, anything = glob_regex("sales/**"), glob_regex("public/**"), glob_regex("**/*.md")
    assert sales.match("sales/q3/deals.md") and not sales.match("exec/sales/board.eml")
    assert not public.match("engineering/public/x.md")
    assert anything.match("a.md") and anything.match("a/b/c.md") and not anything.match("a.mdx")
    assert not glob_regex("sales/*").match("sales/a/b.md")


def test_role_strings_grant_only_valid_roles():
    assert acl_tokens(["exec public"]) == frozenset()
    assert acl_tokens(["sales", "user:dana", "public"]) == {"role:sales", "user:dana", "public"}
    assert acl_tokens([], public=True) == {"public"}


def test_the_oracle_reads_the_corpus_it_was_given(tmp_path):
    plan = build_corpus(tmp_path / "c", seed=1)
    assert {c.cls for c in plan.canaries} == CLASSES
    oracle = AccessOracle.from_manifests(sorted((tmp_path / "c").glob("*.yaml")))
    docs = oracle.docs
    assert docs["wiki:exec/sales/board-minutes.md"].tokens == {"role:exec"}
    assert docs["email:exec/sales/board.eml"].tokens == {"role:exec"}
    assert docs["wiki:engineering/public/credentials-rotation.md"].tokens == {"role:engineering", "role:exec"}
    assert docs["wiki:people/dana/performance-review.md"].tokens == {"user:dana"}
    assert docs["wiki:drafts/unreleased-pricing.md"].tokens == frozenset()
    assert docs["crm:C-902"].tokens == {"role:sales", "role:exec"} and docs["crm:C-903"].tokens == frozenset()
    assert "wiki:support/linked-secret.md" not in docs  # a symlink out of the tree is no document
    assert docs["wiki:finance/layoffs-plan.md"] and docs["crm:C-905"]
    apply_resync_changes(tmp_path / "c")
    after = AccessOracle.from_manifests(sorted((tmp_path / "c").glob("*.yaml"))).docs
    assert "wiki:finance/layoffs-plan.md" not in after and "crm:C-905" not in after
    assert after["wiki:sales/pipeline-review.md"].tokens == {"role:exec"} == after["crm:C-907"].tokens
    assert after["wiki:sales/pipeline-forecast.md"].tokens == {"role:exec"}


def test_keys_vouch_only_for_what_they_may_assert():
    bound = KeyGrant(("sales",), ("dana",))
    assert bound.legit_tokens("dana", ["sales", "finance"]) == {"public", "role:sales", "user:dana"}
    assert bound.legit_tokens("erin", []) == {"public"}
    assert bound.must_refuse("dana", ["finance"]) and not bound.must_refuse("erin", ["sales"])
    assert KeyGrant(("*",)).must_refuse("x", ["exec public"]) and not KeyGrant(("*",)).must_refuse("x", ["hr"])


def test_the_judge_flags_hidden_things_and_spares_the_callers_own_input(tmp_path):
    plan = build_corpus(tmp_path / "c", seed=2)
    oracle = AccessOracle.from_manifests(sorted((tmp_path / "c").glob("*.yaml")))
    name = next(n for n in plan.entity_names if oracle.docs_containing(n) == {"crm:C-900"})  # exec only
    judge = Judge(oracle, plan, EntityMap({"ent_x": {"crm:C-900"}}, {"ent_x": {name}}))
    sales = frozenset({"public", "role:sales"})
    secret = next(c for c in plan.canaries if c.doc_id == "wiki:exec/sales/board-minutes.md")
    hidden = next(c for c in plan.canaries if c.cls == "hidden_html")
    text = f'{{"doc_id": "{secret.doc_id}", "text": "{secret.token} {hidden.token}", "x": "crm:C-10"}}'
    found = judge.scan(text, sales)
    assert ("nested_folders", "doc_id", secret.doc_id) in found and ("nested_folders", "canary", secret.token) in found
    assert ("hidden_html", "canary", hidden.token) in found
    assert judge.scan(text, sales, exempt=(secret.doc_id, secret.token, hidden.token)) == []
    assert {k for _, k, _ in judge.scan(f'{{"name": "{name}", "e": "ent_x"}}', sales)} == {"entity_name", "entity_id"}
    assert judge.scan('{"e": "ent_x"}', frozenset({"public", "role:exec"})) == []


def test_a_bounded_run_probes_every_endpoint_and_finds_no_new_leak(lab):
    report = probe_lab(lab, probes=300, seed=11)
    assert report["probes"] == 300
    assert set(report["probes_by_endpoint"]) == set(ENDPOINTS)
    assert set(report["leaks_by_class"]) >= CLASSES
    leaking = {cls for cls, n in report["leaks_by_class"].items() if n}
    assert leaking <= STILL_OPEN, {c: report["leak_matrix"][c] for c in leaking - STILL_OPEN}
    assert report["corpus"]["resync"]["deleted"] >= 2 and report["corpus"]["resync"]["failed"] >= 2


class AclDroppingStore:
    """A deliberately broken store: every read answers as if the caller held every role and user."""

    EVERYTHING = tuple(f"role:{r}" for r in ROLES) + tuple(f"user:{u}" for u in USERS) + ("public",)

    def __init__(self, inner) -> None:  # noqa: ANN001
        self._inner = inner

    def __getattr__(self, name: str):  # noqa: ANN204
        return getattr(self._inner, name)

    def search(self, query, *, acl_tokens, filters=None):  # noqa: ANN001, ANN201
        return self._inner.search(query, acl_tokens=self.EVERYTHING, filters=filters)

    def document_chunks(self, doc_id, *, acl_tokens, limit=10_000):  # noqa: ANN001, ANN201
        return self._inner.document_chunks(doc_id, acl_tokens=self.EVERYTHING, limit=limit)


def test_a_store_that_drops_the_acl_filter_is_caught(lab):
    report = probe_lab(lab, probes=150, seed=12, wrap_store=AclDroppingStore)
    assert report["leaks_by_class"]["baseline"] > 0
    assert report["leak_matrix"]["baseline"].get("/v1/search", 0) > 0
    assert report["leak_matrix"]["baseline"].get("/v1/documents/{id}", 0) > 0
    # ... and the lab is honest again afterwards (the wrapper is gone).
    assert probe_lab(lab, probes=60, seed=13)["leaks_by_class"]["baseline"] == 0


def test_a_registry_view_that_ignores_tokens_is_caught(lab, monkeypatch):
    import entity_resolution.views as views

    blind_list, blind_show = views.list_entities, views.entity_view
    blind = {"acl_tokens": None}
    monkeypatch.setattr(views, "list_entities", lambda store, **kw: blind_list(store, **{**kw, **blind}))
    monkeypatch.setattr(views, "entity_view", lambda store, eid, **kw: blind_show(store, eid, **{**kw, **blind}))
    report = probe_lab(lab, probes=250, seed=14)
    # Leaks on the entity routes in classes that leak nowhere on main: the blind view is what they show.
    caught = {(c, e): n for c, row in report["leak_matrix"].items() if c not in STILL_OPEN
              for e, n in row.items() if "entities" in e}
    assert sum(caught.values()) > 0, report["leak_matrix"]
    assert sum(report["leak_kinds"].get(c, {}).get("entity_name", 0) for c, _ in caught) > 0


def _redaction_focus(plan):  # noqa: ANN001, ANN202
    """Probes aimed at the redaction class: its documents, its topics and the raw values themselves."""
    asked = {v.value for v in plan.redacted} | {q for c in plan.canaries if c.cls == "redaction" for q in (c.query, c.token)}
    return lambda item: item.startswith(("hrdesk:", "payees:")) or item in asked


def test_redacted_values_reach_allowed_roles_only_through_every_endpoint(lab):
    plan = lab.plan
    assert {v.rule for v in plan.redacted} == {"email", "phone", "iban", "card", "account"}
    report = probe_lab(lab, probes=400, seed=21, focus=_redaction_focus(lab.plan))
    assert report["leaks_by_class"]["redaction"] == 0, report["examples"]
    assert report["leaks"] == 0, report["examples"]
    assert report["redaction"]["raw_shown_to_allowed"] > 0 and report["redaction"]["withheld_from_allowed"] == 0
    # every endpoint family was probed on the redaction corpus
    assert {"context", "search", "documents", "entities.list", "errors", "mcp.context", "mcp.documents"} <= set(
        report["probes_by_endpoint"])


class RedactionDroppingStore:
    """A deliberately broken store: chunks come back without their redaction policy, so text is served raw."""

    def __init__(self, inner) -> None:  # noqa: ANN001
        self._inner = inner

    def __getattr__(self, name: str):  # noqa: ANN204
        method = getattr(self._inner, name)
        if name not in ("search", "fetch_chunks", "fetch_neighbours", "document_chunks"):
            return method
        from dataclasses import replace

        from core.payload import REDACT

        return lambda *a, **kw: [replace(h, payload={k: v for k, v in h.payload.items() if k != REDACT})
                                 for h in method(*a, **kw)]


def test_a_store_that_drops_the_redaction_policy_is_caught(lab):
    report = probe_lab(lab, probes=250, seed=22, wrap_store=RedactionDroppingStore, focus=_redaction_focus(lab.plan))
    assert report["leaks_by_class"]["redaction"] > 0
    matrix = report["leak_matrix"]["redaction"]
    assert matrix.get("/v1/documents/{id}", 0) > 0 and matrix.get("/v1/search", 0) + matrix.get("/v1/context", 0) > 0
    assert report["leak_kinds"]["redaction"].get("redacted_value", 0) > 0
    assert probe_lab(lab, probes=60, seed=23, focus=_redaction_focus(lab.plan))["leaks_by_class"]["redaction"] == 0


def test_the_cli_exits_1_on_any_leak(monkeypatch):
    import evaluation.leaks as leaks
    from api.cli import app

    def fake(leaks_found: int):  # noqa: ANN202
        return lambda **kw: {"probes": kw["probes"], "leaks": leaks_found, "leaking_probes": leaks_found,
                             "distinct_leaks": leaks_found, "leaks_by_class": {"baseline": leaks_found},
                             "leak_matrix": {}, "probes_by_endpoint": {}, "statuses": {}, "unrefused_assertions": 0,
                             "seconds": {"probes": 1.0, "total": 2.0}, "examples": []}

    runner = CliRunner()
    monkeypatch.setattr(leaks, "run_leaks", fake(3))
    assert runner.invoke(app, ["eval", "leaks", "--probes", "5"]).exit_code == 1
    monkeypatch.setattr(leaks, "run_leaks", fake(0))
    result = runner.invoke(app, ["eval", "leaks", "--probes", "5", "--json"])
    assert result.exit_code == 0 and '"probes": 5' in result.stdout
    assert runner.invoke(app, ["eval", "leaks", "--corpus", "/nonexistent-corpus"]).exit_code == 2
