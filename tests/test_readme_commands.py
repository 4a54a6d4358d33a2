"""Every shell command the README and docs/ show is accounted for: run here as written (against a scratch data
dir in subprocesses), run by another named test, or skipped with a
reason. A new or changed command that is in none of the three lists fails the test, so no example can go
silently untested.

A command is keyed by its first line with the trailing comment removed and spaces collapsed.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
COMMAND_WORDS = (".venv/bin/", "stitch ", "make ", "python ", "curl ", "KEY=", "nice ", "export ")
SHELL_FENCES = {"", "bash", "sh", "shell", "console"}

# Run by this module (see _steps for the concrete form of synopsis lines such as `[--json]` or `ent_A`).
RUN = {
    ".venv/bin/stitch ingest fixtures/manifests/wiki.yaml",
    '.venv/bin/stitch query "How do enterprise refunds work?" --role sales --json',
    ".venv/bin/stitch keys create --scope context --role sales --role support",
    "stitch keys create --scope context --role sales --role support --principal alice --principal bob --name crm-bot",
    "stitch keys create --scope context --role sales --role support --name crm-bot",
    "stitch keys create --scope ingest --name nightly-sync",
    "stitch keys create --scope context --role sales --principal 'svc-*' --name reports",
    "stitch keys create --scope context --role '*' --any-principal --name orchestrator",
    "stitch keys create --scope context --role '*' --name orchestrator",
    "stitch keys create --scope context --verified-users-only --name assistant-gateway",
    "stitch keys create --scope entities:write --scope ingest --scope context --role '*' --name steward",
    ".venv/bin/stitch keys create --scope audit",
    "stitch keys list",
    "stitch keys revoke <id>",
    "stitch entities list [-q acme] [--json]",
    "stitch entities show ent_… [--json]",
    "stitch entities merge ent_A ent_B [--note …]",
    "stitch entities split ent_A --alias \"IBM\" …",
    "stitch entities never-link ent_A ent_B",
    "stitch entities resolve [--json]",
    "stitch audit verify",
    "stitch audit export --format csv --since 2026-12-01 --until 2026-12-02 --principal alice -o review.csv",
    "stitch audit export",
    ".venv/bin/stitch serve --port 8000",
}

# Run, as written or with the README's key, by another test (file::function must exist).
COVERED = {
    "curl -s -X POST -H \"Authorization: Bearer $ADMIN_KEY\" -H 'Content-Type: application/json' \\":
        "tests/test_governance_feedback.py::test_tune_route_needs_admin_fits_in_the_serving_process_and_serves_the_result",
    "KEY=stk_…; H=\"Authorization: Bearer $KEY\"": "tests/test_docs.py::test_readme_endpoint_examples_answer_with_the_readme_key",
    "curl -s localhost:8000/v1/context -H \"$H\" -H 'Content-Type: application/json' -d '{":
        "tests/test_docs.py::test_readme_endpoint_examples_answer_with_the_readme_key",
    "curl -s localhost:8000/v1/search -H \"$H\" -H 'Content-Type: application/json' \\":
        "tests/test_docs.py::test_readme_endpoint_examples_answer_with_the_readme_key",
    "curl -s \"localhost:8000/v1/documents/wiki:company-handbook.md?principal_id=alice&role=sales\" -H \"$H\"":
        "tests/test_docs.py::test_readme_endpoint_examples_answer_with_the_readme_key",
    "curl -s localhost:8000/healthz; curl -s localhost:8000/readyz":
        "tests/test_docs.py::test_readme_endpoint_examples_answer_with_the_readme_key",
    "curl -s localhost:8000/healthz; curl -s localhost:8000/readyz; curl -s localhost:8000/metrics":
        "tests/test_api_server.py::test_every_endpoint_answers_on_a_real_server",
    "curl -s localhost:8000/v1/ingest/jobs -H \"Authorization: Bearer $INGEST_KEY\" -H 'Content-Type: application/json' \\":
        "tests/test_api_server.py::test_every_endpoint_answers_on_a_real_server",
    "curl -s localhost:8000/v1/ingest/jobs/job_… -H \"Authorization: Bearer $INGEST_KEY\"":
        "tests/test_api_server.py::test_every_endpoint_answers_on_a_real_server",
    "curl -s localhost:8000/metrics -H \"Authorization: Bearer $METRICS_KEY\"":
        "tests/test_side_channels.py::test_metrics_need_a_metrics_or_admin_key",
    "curl -s localhost:8000/v1/context -H \"Authorization: Bearer $GATEWAY_KEY\" \\":
        "tests/test_identity_jwt.py::test_a_verified_user_reads_what_the_token_grants",
    "curl -s -H \"Authorization: Bearer $AUDIT_KEY\" http://127.0.0.1:8000/v1/context/$REQUEST_ID":
        "tests/test_governance_packs.py::test_replay_shows_the_request_and_that_it_still_holds",
    ".venv/bin/stitch eval leaks --probes 500 --json":
        "tests/test_eval_leaks.py::test_a_bounded_run_probes_every_endpoint_and_finds_no_new_leak",
    ".venv/bin/stitch eval leaks --probes 500 --seed 3 --json":
        "tests/test_eval_leaks.py::test_a_bounded_run_probes_every_endpoint_and_finds_no_new_leak",
    ".venv/bin/stitch eval all --out reports/": "tests/test_eval_suite.py::test_reports_are_written",
    ".venv/bin/stitch eval generate --seed 2 --out /tmp/corpus-2": "tests/test_eval_corpus.py::test_cli_generate_and_bad_corpus",
    ".venv/bin/stitch eval all --corpus /tmp/corpus-2 --out /tmp/report-2":
        "tests/test_eval_corpus.py::test_eval_all_on_a_generated_corpus_reports_issue_11_measures",
    "stitch eval entities DIR [--json]": "tests/test_entity_eval.py::test_tiny_deepmatcher_set_reports_pairwise_scores",
    "stitch sources list": "tests/test_sources_cli.py::test_remove_a_source_everywhere_and_free_its_name",
    "stitch sources remove crm --yes": "tests/test_sources_cli.py::test_remove_a_source_everywhere_and_free_its_name",
    "make test": "the CI job itself (`make test` on a clean clone)",
}

# Not run by any test, and why.
SKIPPED = {
    "make demo": "installs and serves in the foreground on a fixed port; its parts (ingest, demo key, serve) are "
                 "tests/test_identity_lifecycle.py::test_demo_keys_are_ephemeral_scoped_and_not_accumulated and this module",
    "make demo PORT=8010 HOST=0.0.0.0": "as `make demo`; the PORT/HOST pass-through is one Makefile line",
    ".venv/bin/stitch eval leaks": "10,000 probes take minutes; the bounded run is tests/test_eval_leaks.py",
    ".venv/bin/stitch eval leaks --corpus fixtures": "minutes on the fixture corpus; tests/test_eval_leaks.py "
                                                      "::test_the_oracle_reads_the_corpus_it_was_given reads a given corpus",
    ".venv/bin/stitch eval retrieval beir/scifact --json": "needs the SciFact download (not in the repository)",
    ".venv/bin/stitch eval retrieval beir/cacm --json": "needs the CACM conversion (not in the repository)",
    ".venv/bin/python -c \"": "the SciFact tuning recipe: needs the SciFact download",
    ".venv/bin/python bench/ingest.py --backends onnx-int8 --limit 1000": "benchmark (minutes; SciFact download)",
    ".venv/bin/python bench/ingest.py --backends torch --limit 500": "benchmark (minutes; SciFact download)",
    ".venv/bin/python bench/ingest.py": "benchmark (full SciFact, both backends)",
    ".venv/bin/python bench/revoke.py --rounds 3": "benchmark against a real server (minutes)",
    ".venv/bin/python bench/registry.py --docs 5000": "benchmark (minutes)",
    ".venv/bin/python bench/api.py --clients 1 8 50 --seconds 20": "load benchmark (minutes)",
    ".venv/bin/python bench/api.py --clients 50 --seconds 20": "load benchmark (minutes)",
    ".venv/bin/python bench/store_gil.py --points 20000": "engine GIL benchmark (seconds; prints JSON)",
    ".venv/bin/python -m bench.assemble --beir ../shared/benchmarks/retrieval/scifact --data /tmp/stitch-eval/scifact": "benchmark on an index `stitch eval retrieval` built (minutes)",
    ".venv/bin/python -m bench.query --with-encoder": "benchmark: builds a 100k-chunk store (minutes)",
    ".venv/bin/python -m bench.query --chunks 100000 --settings engine plan": "benchmark: builds a 100k-chunk store",
    "nice -n 10 .venv/bin/python -m bench.query --chunks 1000000 --queries 100 --keep /tmp/scale/store-1m-m32 "
    "--settings engine plan": "benchmark: builds (once, kept) a 1M-chunk store",
    ".venv/bin/python bench/api.py --clients 20 --seconds 20 --ingest-beside 600": "load benchmark with ingest",
    ".venv/bin/python bench/ingest.py --backends onnx-int8 --cases scifact": "benchmark (full SciFact ingest)",
    ".venv/bin/python -m bench.parity --backends onnx-int8 torch": "quality benchmark (two SciFact ingests)",
    "python bench/entities.py --records 100000": "benchmark (minutes)",
    "python bench/entities.py --records 1000000": "benchmark (1M records: minutes, GBs of memory)",
    "python bench/entities.py --records 20000 --seed 1 --seed 2 --seed 3": "benchmark over three seeds (minutes)",
    ".venv/bin/python bench/people.py": "benchmark: stitch ingest of the shared Enron sample (minutes, data outside the "
                                        "repo); tests/test_entity_people.py covers the behaviour on synthetic mails",
    ".venv/bin/stitch eval generate --seed 12 --out /tmp/pp-12 && .venv/bin/stitch eval all --corpus /tmp/pp-12":
        "eval all over a generated corpus (minutes); tests/test_eval_corpus.py runs it on a small one",
    ".venv/bin/python -c 'from pathlib import Path; from evaluation.suite import run_all":
        "eval all over a generated 30-organisation corpus (minutes); tests/test_eval_corpus.py runs it on 8",
}


def _key(line: str) -> str:
    return " ".join(re.sub(r"\s+#\s.*$", "", line.strip()).split())


def _blocks(text: str) -> list[str]:
    fenced = [m.group(2) for m in re.finditer(r"^```(\w*)\n(.*?)^```", text, flags=re.S | re.M)
              if m.group(1) in SHELL_FENCES]
    outside = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    indented = [m.group(0) for m in re.finditer(r"(?:^ {4}.*\n)+", outside, flags=re.M)]
    return fenced + indented


def commands(text: str) -> list[str]:
    """The commands of every shell block: a line starting with a command word starts one; other lines
    (continuations, a multi-line body) belong to the command before them; comments are skipped."""
    found = []
    for block in _blocks(text):
        for line in block.splitlines():
            if line.strip().startswith(COMMAND_WORDS):
                found.append(_key(line))
    return found


def test_every_shown_command_is_run_covered_or_skipped_with_a_reason():
    shown = {(path.name, c) for path in DOCS for c in commands(path.read_text(encoding="utf-8"))}
    assert len(shown) > 40
    classified = RUN | set(COVERED) | set(SKIPPED)
    unaccounted = sorted(f"{name}: {c}" for name, c in shown if c not in classified)
    assert not unaccounted, ("commands in the docs that no test runs: add them to RUN (and _steps), COVERED "
                             "or SKIPPED in tests/test_readme_commands.py:\n" + "\n".join(unaccounted))
    assert not RUN & set(COVERED) and not RUN & set(SKIPPED) and not set(COVERED) & set(SKIPPED)
    stale = classified - {c for _, c in shown}
    assert not stale, f"listed but no longer in the docs: {sorted(stale)}"
    for where in COVERED.values():
        if "::" in where:
            file, function = where.split("::")
            assert f"def {function}(" in (ROOT / file).read_text(encoding="utf-8"), where
    assert all(len(reason) > 15 for reason in SKIPPED.values())


def _steps() -> list[tuple[str, str]]:
    """(README command, the concrete command run): synopsis placeholders filled in from earlier output."""
    return [
        (".venv/bin/stitch ingest fixtures/manifests/wiki.yaml", ".venv/bin/stitch ingest fixtures/manifests/wiki.yaml"),
        ('.venv/bin/stitch query "How do enterprise refunds work?" --role sales --json',
         '.venv/bin/stitch query "How do enterprise refunds work?" --role sales --json'),
        *[(c, c) for c in sorted(RUN) if " keys create " in c],
        ("stitch keys list", "stitch keys list"),
        ("stitch keys revoke <id>", "stitch keys revoke {key_id}"),
        ("stitch entities list [-q acme] [--json]", "stitch entities list -q acme --json"),
        ("stitch entities show ent_… [--json]", "stitch entities show {entity_a} --json"),
        ("stitch entities never-link ent_A ent_B", "stitch entities never-link {entity_a} {entity_c}"),
        ("stitch entities merge ent_A ent_B [--note …]", "stitch entities merge {entity_a} {entity_b} --note 'same'"),
        ("stitch entities split ent_A --alias \"IBM\" …", "stitch entities split {entity_a} --alias \"{alias_b}\""),
        ("stitch entities resolve [--json]", "stitch entities resolve --json"),
        ("stitch audit verify", "stitch audit verify"),
        ("stitch audit export --format csv --since 2026-12-01 --until 2026-12-02 --principal alice -o review.csv",
         "stitch audit export --format csv --since 2026-12-01 --until 2026-12-02 --principal alice -o review.csv"),
        ("stitch audit export", "stitch audit export"),
    ]


def _scratch(tmp_path: Path) -> tuple[Path, dict]:
    """A working folder laid out like a checkout (fixtures/, .venv/) with its own data dir; the packaged
    model as `make install` exported it (a tiny model would be exported again, importing torch, per run)."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "fixtures").symlink_to(ROOT / "fixtures")
    (work / ".venv").symlink_to(Path(sys.executable).parent.parent)
    env = {k: v for k, v in os.environ.items() if not k.startswith("STITCH_")}
    env.update({"STITCH_DATA_DIR": str(tmp_path / "data"), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                "PATH": f"{Path(sys.executable).parent}:{env.get('PATH', '')}"})
    return work, env


def _entities_with_aliases(work: Path, env: dict) -> list[dict]:
    out = subprocess.run(["stitch", "entities", "list", "--json"], cwd=work, env=env, capture_output=True, text=True,
                         timeout=300, check=True).stdout
    return [e for e in json.loads(out)["entities"] if e["type"] == "organization"]


@pytest.mark.slow
def test_the_cli_commands_run_as_written(tmp_path):
    work, env = _scratch(tmp_path)
    crm = subprocess.run(["stitch", "ingest", "fixtures/manifests/crm.yaml"], cwd=work, env=env, capture_output=True,
                         text=True, timeout=600)  # entities for the steward commands to act on
    assert crm.returncode == 0, crm.stderr
    values: dict[str, str] = {}
    ran = set()
    for shown, concrete in _steps():
        if "{entity_a}" in concrete and "entity_a" not in values:
            orgs = _entities_with_aliases(work, env)
            values.update(entity_a=orgs[0]["entity_id"], entity_b=orgs[1]["entity_id"],
                          alias_b=orgs[1]["aliases"][0], entity_c=orgs[2]["entity_id"])
        result = subprocess.run(concrete.format(**values), shell=True, cwd=work, env=env, capture_output=True,
                                text=True, timeout=600)
        assert result.returncode == 0, (shown, concrete, result.stdout[-2000:], result.stderr[-2000:])
        if " keys create " in concrete:
            assert result.stdout.startswith("stk_"), result.stdout
            values["key_id"] = result.stdout.split("_")[1]
        if concrete.endswith("--json"):
            json.loads(result.stdout)
        ran.add(shown)
    assert (work / "review.csv").exists()  # `-o review.csv` wrote the export
    assert ran == RUN - {".venv/bin/stitch serve --port 8000"}


@pytest.mark.slow
def test_stitch_serve_runs_as_written_on_another_port(tmp_path):
    """`.venv/bin/stitch serve --port 8000`, on a free port (8000 may be taken on a shared machine)."""
    import httpx

    from tests.test_api_server import _free_port, _wait_ready

    work, env = _scratch(tmp_path)
    port = _free_port()
    process = subprocess.Popen([".venv/bin/stitch", "serve", "--port", str(port)], cwd=work, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_ready(f"http://127.0.0.1:{port}", process, timeout=300)
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10).status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=60)
