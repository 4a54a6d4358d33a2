"""The CLI as a newcomer meets it: the answer of ``stitch query`` reaches stdout when piped, and ingest's
stderr carries the report, not library chatter (model-loading bars, unstructured and pypdf warnings)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, ROOT

STITCH = str(Path(sys.executable).parent / "stitch")
NOISE = ("Loading weights", "No languages specified", "EOF marker not found", "it/s]")


@pytest.mark.slow
def test_query_writes_the_answer_to_stdout_when_piped(stitch_server):
    result = subprocess.run([STITCH, "query", "Q3 revenue forecast", "--role", "finance"], env=stitch_server["env"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "[1]" in result.stdout and "wiki:finance/q3-revenue-forecast.md" in result.stdout
    assert "[1]" not in result.stderr


@pytest.mark.slow
def test_ingest_stderr_is_the_report_not_library_noise(tmp_path):
    docs = tmp_path / "source" / "docs"
    docs.mkdir(parents=True)
    shutil.copy(FIXTURES / "manifests" / "contracts" / "public" / "northwind-terms-of-service.pdf", docs)
    (docs / "broken.pdf").write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n")
    manifest = tmp_path / "source" / "docs.yaml"
    manifest.write_text("source: docs\nkind: files\npath: docs\nacl:\n  default: [sales]\n", encoding="utf-8")
    env = {**os.environ, "STITCH_DATA_DIR": str(tmp_path / "data"), "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1"}
    result = subprocess.run([STITCH, "ingest", str(manifest)], env=env, cwd=ROOT, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 1, result.stderr  # the broken PDF failed, the other landed
    assert "added 1" in result.stderr and "broken.pdf" in result.stderr
    assert not [n for n in NOISE if n in result.stderr], result.stderr


@pytest.mark.slow
def test_default_onnx_path_is_quiet_from_first_export_to_query(tmp_path):
    """A clean machine on the default backend (onnx-int8): the first command exports the model (one
    message says so), then ingest and query print their report and answer — no transformers bar, no
    onnxruntime quantisation advice, no unstructured or pypdf warnings. The tiny model keeps it cheap."""
    from tests.test_ingest_kill import _tiny_model

    docs = tmp_path / "source" / "docs"
    docs.mkdir(parents=True)
    shutil.copy(FIXTURES / "manifests" / "contracts" / "public" / "northwind-terms-of-service.pdf", docs)
    (docs / "broken.pdf").write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n")
    (docs / "notes.md").write_text("# Notes\n\nRefunds are issued within 30 days.\n", encoding="utf-8")
    manifest = tmp_path / "source" / "docs.yaml"
    manifest.write_text("source: docs\nkind: files\npath: docs\nacl:\n  default: [sales]\n", encoding="utf-8")
    env = {key: value for key, value in os.environ.items() if not key.startswith("STITCH_")}
    env.update({"STITCH_DATA_DIR": str(tmp_path / "data"), "STITCH_MODEL_CACHE_DIR": str(tmp_path / "models"),
                "STITCH_EMBEDDING_MODEL": str(_tiny_model(tmp_path / "tiny-model")), "HF_HUB_OFFLINE": "1",
                "TRANSFORMERS_OFFLINE": "1"})
    env.pop("UNSTRUCTURED_DISABLE_NOTICE", None)
    ingest = subprocess.run([STITCH, "ingest", str(manifest)], env=env, cwd=ROOT, capture_output=True, text=True,
                            timeout=600)
    assert ingest.returncode == 1, ingest.stderr
    lines = ingest.stderr.splitlines()
    assert lines[0].startswith("stitch: exporting the encoder to ONNX int8 once"), ingest.stderr
    assert lines[1] == "sources: docs" and "added 2" in lines[2] and "broken.pdf" in lines[3], ingest.stderr
    assert len(lines) == 4, ingest.stderr
    query = subprocess.run([STITCH, "query", "refunds", "--role", "sales"], env=env, cwd=ROOT, capture_output=True,
                           text=True, timeout=300)
    assert query.returncode == 0 and query.stderr == "", query.stderr
    assert "docs:notes.md" in query.stdout
