"""Import direction (ARCHITECTURE.md): core ← entity_resolution ← ingest; retrieval never imports ingest;
nothing imports api or evaluation."""

from __future__ import annotations

import ast

from tests.conftest import ROOT

ALLOWED = {
    "core": {"core"},
    "entity_resolution": {"core", "entity_resolution"},
    "ingest": {"core", "entity_resolution", "ingest", "governance"},
    "retrieval": {"core", "entity_resolution", "retrieval", "governance"},
    "governance": {"core", "governance"},
    "api": {"core", "entity_resolution", "ingest", "retrieval", "api", "evaluation", "governance"},
    "evaluation": {"core", "entity_resolution", "ingest", "retrieval", "api", "evaluation", "governance"},
    # The Python client talks HTTP only: it must install and run without the server's packages.
    "stitch_client": {"stitch_client"},
}


def _imports(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module.split(".")[0]


def test_packages_import_only_in_the_allowed_direction():
    violations = []
    for package, allowed in ALLOWED.items():
        for path in (ROOT / package).rglob("*.py"):
            for name in _imports(path):
                if name in ALLOWED and name not in allowed:
                    violations.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not violations, violations


def test_only_core_config_reads_the_environment():
    offenders = []
    for package in ALLOWED:
        for path in (ROOT / package).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            if ("os.environ[" in text or "os.getenv(" in text or "environ.get(" in text) and path.name != "config.py":
                offenders.append(str(path.relative_to(ROOT)))
    assert not offenders, offenders
