"""The ONNX backends embed like the torch model they were exported from; the export happens once,
ahead of any request (``stitch prepare-model`` at install, or the first start with a message)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from core.config import Settings
from core.encoder import Encoder, SentenceTransformerEncoder, load_encoder, packaged_model_path

TEXTS = [
    "Enterprise customers may request a refund within 30 days of renewal.",
    "Incident runbook: page the on-call engineer, then open a status page entry.",
    "hello",
    "Parental leave is sixteen weeks at full pay. " * 40,  # longer than the window: truncated alike
]
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def model_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture(scope="module")
def torch_encoder():
    return SentenceTransformerEncoder(packaged_model_path())


def test_default_backend_is_onnx_int8():
    assert Settings(data_dir=Path("unused")).encoder_backend == "onnx-int8"


@pytest.mark.parametrize(("backend", "min_cosine"), [("onnx", 0.999), ("onnx-int8", 0.98)])
def test_onnx_vectors_match_torch(torch_encoder, model_cache, tmp_path, backend, min_cosine, caplog):
    settings = Settings(data_dir=tmp_path / "data", model_cache_dir=model_cache, encoder_backend=backend)
    with caplog.at_level(logging.WARNING, logger="stitch.encoder"):
        onnx = load_encoder(settings)
    assert "exporting the encoder to ONNX" in caplog.text  # first start: said, not silent
    assert isinstance(onnx, Encoder)
    assert (onnx.dimension, onnx.max_tokens) == (torch_encoder.dimension, torch_encoder.max_tokens)
    ours, theirs = onnx.encode_passages(TEXTS), torch_encoder.encode_passages(TEXTS)
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-4)
    assert (ours * theirs).sum(axis=1).min() > min_cosine
    assert float(onnx.encode_query(TEXTS[0]) @ theirs[0]) > min_cosine
    assert onnx.count_tokens(TEXTS) == torch_encoder.count_tokens(TEXTS)
    assert onnx.tokenizer(TEXTS[:1], add_special_tokens=False)["input_ids"][0] == onnx._count_tok.encode(
        TEXTS[0], add_special_tokens=False).ids  # ingest's tokenizer and the encoder's agree
    assert not (tmp_path / "data").exists()  # the cache is shared, not inside a data dir


def test_a_vector_barely_depends_on_its_batch(encoder):
    """int8 activations are quantised per batch tensor (dynamic scale), so a text's vector moves a
    little with what it is batched with (micro-batched queries, length-bucketed passages): bounded
    like the torch parity."""
    batch = encoder.encode_passages(TEXTS)
    for i, text in enumerate(TEXTS):
        assert float(encoder.encode_query(text) @ batch[i]) > 0.97  # worst seen: 0.978, "hello" beside 256 tokens


def test_a_query_alone_and_in_a_batch_gets_the_same_vector(model_cache, tmp_path, encoder):
    """Padding, the attention mask and mean pooling are exact: with fp32 weights a query's vector does
    not depend on the batch it rides in (1e-5). int8 quantises activations with one scale per batch
    tensor, so there it moves by quantisation noise only: cosine > 0.985 for real queries together; a
    one-word query moves most (``hello``: 0.981 with the plain graph, 0.972-0.977 with the fused default)."""
    from core.batching import BatchingEncoder

    queries = ["refund policy", "who approves parental leave for contractors in the Berlin office", "hello"]
    fp32 = load_encoder(Settings(data_dir=tmp_path, model_cache_dir=model_cache, encoder_backend="onnx"))
    batched = fp32.encode_queries(queries)
    for i, query in enumerate(queries):
        assert np.abs(fp32.encode_query(query) - batched[i]).max() < 1e-5
        assert np.abs(BatchingEncoder(fp32).encode_query(query) - batched[i]).max() < 1e-5  # the lone path
    int8 = encoder.encode_queries(queries)
    alone = [float(encoder.encode_query(q) @ int8[i]) for i, q in enumerate(queries)]
    assert min(alone[:2]) > 0.985 and alone[2] > 0.97


def test_query_and_passage_sessions_are_sized_apart(tmp_path, model_cache):
    """Queries: one intra-op thread (STITCH_ENCODER_QUERY_THREADS); passages with STITCH_ENCODER_SPLIT=operators:
    STITCH_ENCODER_THREADS intra-op threads, in a session made only when the first passage is encoded (a
    query-only CLI never loads it)."""
    settings = Settings(data_dir=tmp_path, model_cache_dir=model_cache, encoder_backend="onnx", encoder_threads=2,
                        encoder_query_threads=1, encoder_split="operators")
    onnx = load_encoder(settings)
    assert onnx._query_session.get_session_options().intra_op_num_threads == 1
    assert "_passage_session" not in vars(onnx)
    onnx.encode_passages(["a passage"])
    assert onnx._passage_session.get_session_options().intra_op_num_threads == 2


class _ThreadSpy:
    """Records which thread ran each batch, and how many batches were in the model at once."""

    def __init__(self, session) -> None:  # noqa: ANN001
        self.session, self.threads, self.inside, self.most = session, [], 0, 0
        self._lock = threading.Lock()

    def run(self, outputs, feeds):  # noqa: ANN001, ANN201
        with self._lock:
            self.threads.append(threading.current_thread().name)
            self.inside += 1
            self.most = max(self.most, self.inside)
        try:
            time.sleep(0.05)  # long enough that a second pool thread is inside too, if batches run at once
            return self.session.run(outputs, feeds)
        finally:
            with self._lock:
                self.inside -= 1


def test_ingest_batches_run_at_once_one_thread_each(tmp_path, model_cache, monkeypatch):
    """STITCH_ENCODER_SPLIT=batches (the default): a call's batches run side by side, one per core asked for,
    each on a one-thread session, and the vectors are the ones one batch at a time gives, in input order."""
    texts = [f"passage {i} about renewal terms " + "word " * (i % 40) for i in range(10)]
    split = Settings(data_dir=tmp_path, model_cache_dir=model_cache, encoder_threads=2, embed_batch_size=2)
    assert split.encoder_split == "batches"
    together, alone = load_encoder(split), load_encoder(split.model_copy(update={"encoder_split": "operators"}))
    assert together is not alone
    spy = _ThreadSpy(together._passage_session)
    assert together._passage_session.get_session_options().intra_op_num_threads == 1
    monkeypatch.setattr(together, "_passage_session", spy)
    got = together.encode_passages(texts)
    assert len(spy.threads) == 5 and spy.most == 2  # five batches of two, two in the model at once, never more
    assert all(name.startswith("encode-batch") for name in spy.threads)
    assert np.abs(got - alone.encode_passages(texts)).max() < 1e-5
    one = together.encode_passages(texts[:2])  # a single batch stays on the calling thread
    assert spy.threads[-1] == threading.current_thread().name and np.abs(one - got[:2]).max() < 1e-5


def test_onnx_encoder_handles_empty_input(model_cache, tmp_path):
    onnx = load_encoder(Settings(data_dir=tmp_path, model_cache_dir=model_cache, encoder_backend="onnx"))
    assert onnx.encode_passages([]).shape == (0, onnx.dimension)


def test_prepare_model_command_reuses_the_export(model_cache, tmp_path):
    """`make install` runs `stitch prepare-model`; with the export present it only says where it is."""
    load_encoder(Settings(data_dir=tmp_path, model_cache_dir=model_cache))  # exported (or already)
    env = {**os.environ, "STITCH_MODEL_CACHE_DIR": str(model_cache), "STITCH_DATA_DIR": str(tmp_path / "d"),
           "PYTHONPATH": str(ROOT)}
    env.pop("STITCH_ENCODER_BACKEND", None)
    done = subprocess.run([sys.executable, "-m", "api.cli", "prepare-model"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "exporting" not in done.stderr
    assert f"onnx-int8: {model_cache}" in done.stderr


def test_unwritable_cache_is_a_configuration_error(tmp_path):
    from core.errors import ConfigurationError

    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(ConfigurationError, match="STITCH_MODEL_CACHE_DIR"):
        load_encoder(Settings(data_dir=tmp_path, model_cache_dir=blocker / "models", encoder_backend="onnx"))


def test_fused_export_is_fused_before_quantisation(torch_encoder, model_cache, tmp_path):
    """STITCH_ENCODER_GRAPH=fused (the default): the exported graph carries ONNX Runtime's fused transformer ops (one
    Attention per layer, fused LayerNorm and GELU), int8 quantises the fused attention as QAttention, and
    the vectors keep the int8 bound to torch."""
    import onnx

    from core.onnx_encoder import _cache_dir
    from ingest.chunk import ChunkingPolicy
    from ingest.pipeline import processing_version

    settings = Settings(data_dir=tmp_path, model_cache_dir=model_cache, encoder_graph="fused")
    fused = load_encoder(settings)
    assert (fused.encode_passages(TEXTS) * torch_encoder.encode_passages(TEXTS)).sum(axis=1).min() > 0.98
    cache = _cache_dir(settings, packaged_model_path())
    assert settings.encoder_graph == Settings(data_dir=tmp_path).encoder_graph  # what users run
    plain_settings = Settings(data_dir=tmp_path, model_cache_dir=model_cache, encoder_graph="plain")
    assert cache != _cache_dir(plain_settings, packaged_model_path())
    fp32 = {n.op_type for n in onnx.load(str(cache / "model.onnx"), load_external_data=False).graph.node}
    int8 = {n.op_type for n in onnx.load(str(cache / "model.int8.onnx"), load_external_data=False).graph.node}
    assert {"Attention", "SkipLayerNormalization", "BiasGelu"} <= fp32
    assert "Softmax" not in fp32  # no unfused attention left
    assert {"QAttention", "MatMulInteger"} <= int8
    plain = load_encoder(plain_settings)
    policy = ChunkingPolicy(254, 32)
    assert processing_version(fused, policy) != processing_version(plain, policy)  # switching re-embeds


class _ShapeSpy:
    def __init__(self, session) -> None:  # noqa: ANN001
        self.session, self.shapes = session, []

    def run(self, outputs, feeds):  # noqa: ANN001, ANN201
        self.shapes.append(feeds["input_ids"].shape)
        return self.session.run(outputs, feeds)


def test_passages_go_in_length_buckets_padded_to_their_own_longest(encoder, monkeypatch):
    """Tokenised once, sorted by token count, each batch padded only to its longest member; vectors come
    back in input order."""
    texts = ["word " * n for n in (200, 3, 90, 5, 150, 1)]
    spy = _ShapeSpy(encoder._passage_session)
    monkeypatch.setattr(encoder, "_passage_session", spy)
    monkeypatch.setattr(encoder, "_batch_size", 2)
    got = encoder.encode_passages(texts)
    lengths = [len(e.ids) for e in encoder._embed_tok.encode_batch(texts)]
    buckets = sorted(lengths)
    assert sorted(spy.shapes) == [(2, buckets[i + 1]) for i in range(0, 6, 2)]  # batches may run at once
    for i, text in enumerate(texts):
        assert float(got[i] @ encoder.encode_query(text)) > 0.97


def test_passages_given_their_ids_are_not_tokenised_again_and_get_the_same_vectors(encoder, monkeypatch):
    """Ingest hands the chunker's ids over: those texts skip the tokenizer, the others are tokenised here,
    and every vector is the one tokenising would give (over-long ids are cut as the tokenizer cuts)."""
    texts = ["Initech renews its master agreement on 1 March.", "Über-Guide 路 v2: 🙂 résumé", "word " * 400, "x"]
    ids = [encoder.tokens([t])[0][0] for t in texts]
    reference = encoder.encode_passages(texts)
    tokenised: list[str] = []
    real = encoder._embed_tok

    class _Spy:
        def encode_batch(self, batch):  # noqa: ANN001, ANN202
            tokenised.extend(batch)
            return real.encode_batch(batch)

    monkeypatch.setattr(encoder, "_embed_tok", _Spy())
    given = encoder.encode_passages(texts, [ids[0], None, ids[2], ids[3]])
    assert tokenised == [texts[1]]
    assert np.abs(given - reference).max() < 1e-6
    with pytest.raises(ValueError, match="2 entries for 4 texts"):
        encoder.encode_passages(texts, ids[:2])


def test_only_a_wordpiece_tokenizer_that_splits_at_words_takes_ids(encoder):
    from tokenizers import Tokenizer, models, pre_tokenizers

    from core.onnx_encoder import _splits_at_words

    assert encoder.splits_at_words
    other = Tokenizer(models.WordPiece({"[UNK]": 0, "a": 1}, unk_token="[UNK]"))
    other.pre_tokenizer = pre_tokenizers.Metaspace()  # SentencePiece-style: a word's start is part of its token
    assert not _splits_at_words(other)
