"""`stitch query` stays light: the query path never imports torch, transformers, llama-index or the
ingest stack (those imports were most of its ~6 s cold start). Checked on what is imported, not on
wall-clock time (bench figures are in the README)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "transformers", "sentence_transformers", "llama_index.core", "unstructured", "qdrant_client",
         "ingest.pipeline", "fastapi")
SCRIPT = f"""
import json, sys
from api.cli import app
try:
    app(["query", "How do refunds work?", "--role", "sales", "--json"])
except SystemExit as exc:
    code = exc.code
print(json.dumps({{"code": code, "heavy": [m for m in {HEAVY!r} if m in sys.modules]}}))
"""


def test_query_path_imports_nothing_heavy(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "STITCH_DATA_DIR": str(tmp_path / "data")}
    env.pop("STITCH_ENCODER_BACKEND", None)
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    lines = done.stdout.strip().splitlines()
    assert done.returncode == 0 and lines, done.stderr
    pack, summary = json.loads(lines[0]), json.loads(lines[-1])
    assert summary == {"code": 0, "heavy": []}
    assert pack["passages"] == [] and pack["usage"]["tokenizer"] == "cl100k_base"  # empty index: empty pack


def test_token_counts_match_llama_index_tokenizer():
    from llama_index.core.utils import get_tokenizer

    from retrieval.pack import count_tokens

    for text in ("How do refunds work?", "Ünïcode — naïve café <|endoftext|> [1] ", "x" * 500, ""):
        assert count_tokens(text) == len(get_tokenizer()(text))
