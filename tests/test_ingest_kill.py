"""`stitch ingest` killed with SIGKILL mid-run: the next run completes with no duplicate and no missing chunk."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.config import Settings
from ingest.chunk import ChunkingPolicy, chunk_document
from ingest.manifest import load_manifest
from ingest.sources import iter_source_items

STITCH = Path(sys.executable).parent / "stitch"
DOCS = 400


def _ledger_count(path: Path) -> int:
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1) as db:
            return int(db.execute("SELECT COUNT(*) FROM documents").fetchone()[0])
    except sqlite3.OperationalError:  # table not created yet
        return 0


def _run(manifest: Path, env: dict) -> subprocess.Popen:
    return subprocess.Popen([str(STITCH), "ingest", str(manifest), "--json"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _tiny_model(target: Path) -> Path:
    """A 1-layer BERT with the packaged model's vocabulary: same tokenizer (so the same chunks), fast to run.

    The crash-safety property does not depend on embedding quality, and a loaded CI box runs the real
    model's 800 passages too slowly for a unit test suite.
    """
    import shutil

    from transformers import BertConfig, BertModel

    from core.encoder import packaged_model_path

    source = Path(packaged_model_path())
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=512)
    BertModel(config).save_pretrained(target)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        shutil.copy(source / name, target / name)
    (target / "sentence_bert_config.json").write_text('{"max_seq_length": 256, "do_lower_case": false}')
    return target


def _store_point_ids(settings: Settings) -> list[str]:
    import qdrant_edge as qe

    shard = qe.EdgeShard.load(str(settings.qdrant_path))
    try:
        records, _ = shard.scroll(qe.ScrollRequest(limit=DOCS * 4, with_payload=False))
        return [str(r.id) for r in records]
    finally:
        shard.close()


@pytest.mark.slow
def test_sigkill_mid_run_then_rerun_leaves_exactly_the_clean_result(tmp_path, encoder):
    rows = [{"id": f"D-{i}", "title": f"Note {i}", "text": f"Note {i} records decision {i * 7} of the team."}
            for i in range(DOCS)]
    (tmp_path / "notes.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    manifest = tmp_path / "notes.yaml"
    manifest.write_text("source: notes\nkind: records\npath: notes.jsonl\nid_field: id\ntitle_field: title\n"
                        "text_fields: [text]\nacl: {default: [staff]}\n")
    settings = Settings(data_dir=tmp_path / "data", embed_batch_size=8)
    env = {**os.environ, "STITCH_DATA_DIR": str(settings.data_dir), "STITCH_EMBED_BATCH_SIZE": "8",
           "STITCH_EMBEDDING_MODEL": str(_tiny_model(tmp_path / "tiny-model"))}

    victim = _run(manifest, env)
    # Kill once some batches are committed, i.e. certainly mid-run (polls progress, not the clock).
    while victim.poll() is None and _ledger_count(settings.ledger_path) < 64:
        time.sleep(0.05)
    assert victim.poll() is None, "the first run finished before it could be killed"
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert 0 < _ledger_count(settings.ledger_path) < DOCS

    rerun = _run(manifest, env)
    out, err = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, err
    report = json.loads(out)
    assert report["failed"] == 0 and report["added"] + report["unchanged"] == DOCS and report["updated"] == 0

    # The clean result: every document's deterministic chunk ids, computed without any store.
    policy = ChunkingPolicy(settings.chunk_max_tokens, settings.chunk_overlap_tokens)
    expected = {c.chunk_id for item in iter_source_items(load_manifest(manifest))
                for c in chunk_document(item.load(), encoder, policy)}
    stored = _store_point_ids(settings)
    assert len(stored) == len(set(stored)) == len(expected)  # no duplicates, nothing missing
    assert set(stored) == expected
    from ingest.ledger import Ledger

    ledger = Ledger(settings.ledger_path)
    assert ledger.count() == DOCS and ledger.chunk_ids() == expected and ledger.pending("notes") == set()
    ledger.close()
