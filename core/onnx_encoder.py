"""ONNX Runtime encoder: the same transformer exported once to ONNX (opset 17), optionally int8.

The export is cached under ``settings.model_cache_path`` (shared by every data dir; ``make install``
runs ``stitch prepare-model`` so it exists before the first start; otherwise the first start exports
it with a message). Nothing is downloaded. Pooling is done here exactly as sentence-transformers does
for all-MiniLM-L6-v2: mean over the attention mask, then L2 normalisation. ``onnx-int8`` quantises
the weights dynamically (QInt8, per channel): ~2.5x the torch throughput, cosine > 0.98 to torch.

Queries and passages are tokenised with the Rust ``tokenizers`` library directly (no transformers
import: that is most of a CLI cold start); the transformers tokenizer is loaded only for ingest.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path

import numpy as np

from core.config import Settings, available_cores
from core.errors import ConfigurationError

_OPSET = 17
_FUSED = "fused-v1"  # part of the fused export's cache key: a new recipe re-exports, never reuses an old file
_LOG = logging.getLogger("stitch.encoder")


def _cache_dir(settings: Settings, path: str) -> Path:
    weights = Path(path) / "model.safetensors"
    stamp = f"{Path(path).resolve()}|{weights.stat().st_mtime_ns if weights.exists() else 0}"
    if settings.encoder_graph == "fused":
        stamp += f"|{_FUSED}"  # the plain export keeps its old key, so existing caches stay valid
    digest = hashlib.sha256(stamp.encode()).hexdigest()[:12]
    return settings.model_cache_path / f"{Path(path).name}-{digest}"


def _max_seq_length(path: str) -> int:
    config = Path(path) / "sentence_bert_config.json"
    if config.exists():
        return int(json.loads(config.read_text()).get("max_seq_length", 256))
    return 256


def _wrapper_class():  # noqa: ANN202 - built lazily so importing this module does not import torch
    import torch

    class TokenEmbeddings(torch.nn.Module):
        """Keyword-call wrapper: transformers' forward signature is not stable positionally."""

        def __init__(self, model) -> None:  # noqa: ANN001
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):  # noqa: ANN001, ANN201
            out = self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return out.last_hidden_state

    return TokenEmbeddings


def export_onnx(path: str, target: Path, *, fused: bool = False) -> Path:
    """Export the HF transformer at ``path`` to ``target/model.onnx`` (token embeddings out); ``fused``
    applies ONNX Runtime's transformer fusions (``fuse_transformer``)."""
    import torch
    from transformers import AutoModel
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # a "Loading weights" bar on the user's stderr is noise
    target.mkdir(parents=True, exist_ok=True)
    out = target / "model.onnx"
    # Eager attention exports as plain MatMul/Softmax, which the fusion below recognises; the default
    # SDPA export does not fuse (docs/serving.md §6).
    extra = {"attn_implementation": "eager"} if fused else {}
    hf_model = AutoModel.from_pretrained(path, local_files_only=True, **extra)
    model = _wrapper_class()(hf_model).eval()
    ids = torch.ones((2, 8), dtype=torch.long)
    dynamic = {0: "batch", 1: "sequence"}
    tmp = target / f"model.onnx.{os.getpid()}.tmp"
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about shape checks that are constant here
        torch.onnx.export(
            model, (ids, torch.ones_like(ids), torch.zeros_like(ids)), str(tmp),
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["last_hidden_state"],
            dynamic_axes={"input_ids": dynamic, "attention_mask": dynamic, "token_type_ids": dynamic,
                          "last_hidden_state": dynamic},
            opset_version=_OPSET, dynamo=False,
        )
    if fused:
        fuse_transformer(tmp, num_heads=hf_model.config.num_attention_heads, hidden_size=hf_model.config.hidden_size)
    tmp.replace(out)  # atomic: a concurrent or killed export never leaves a half file behind
    return out


def fuse_transformer(model_file: Path, *, num_heads: int, hidden_size: int) -> dict[str, int]:
    """Rewrite a BERT-style graph in place with fused Attention, EmbedLayerNormalization,
    SkipLayerNormalization and BiasGelu nodes (onnxruntime.transformers optimizer, CPU, no fp16);
    done before int8 quantisation, which then quantises the fused Attention as one QAttention.
    Returns the fused-operator counts."""
    from onnxruntime.transformers import optimizer

    fused = optimizer.optimize_model(
        str(model_file), model_type="bert", num_heads=num_heads, hidden_size=hidden_size, opt_level=1, use_gpu=False
    )
    fused.save_model_to_file(str(model_file))
    return {op: n for op, n in fused.get_fused_operator_statistics().items() if n}


def quantize_int8(source: Path, target: Path) -> Path:
    """Dynamic int8 quantisation of the weights (per channel)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    tmp = target.with_suffix(f".{os.getpid()}.tmp")
    with _root_logging_quiet():  # onnxruntime's "consider pre-processing" advice is for its developers
        quantize_dynamic(  # fused contrib ops carry no inferred types: their tensors are float
            str(source), str(tmp), weight_type=QuantType.QInt8, per_channel=True,
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
    tmp.replace(target)
    return target


@contextmanager
def _root_logging_quiet() -> Iterator[None]:
    """Drop root-logger records below ERROR. onnxruntime calls ``logging.warning`` on the root logger,
    which would also install a stderr handler (``basicConfig``) for the rest of the process; a
    NullHandler in place keeps that from happening."""
    root = logging.getLogger()
    level, guard = root.level, logging.NullHandler()
    root.addHandler(guard)
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)
        root.removeHandler(guard)


def _cached_file(settings: Settings, path: str, *, int8: bool) -> Path:
    cache = _cache_dir(settings, path)
    return cache / ("model.int8.onnx" if int8 else "model.onnx")


def onnx_model_file(
    settings: Settings, path: str, *, int8: bool, notify: Callable[[str], None] | None = None
) -> Path:
    """The cached ONNX file for the model, exporting (and quantising) it once if it is missing."""
    target = _cached_file(settings, path, int8=int8)
    if target.exists():
        return target
    (notify or _LOG.warning)(
        f"stitch: exporting the encoder to ONNX{' int8' if int8 else ''} once into {target.parent} "
        "(takes ~20-60 s; `make install` / `stitch prepare-model` does this ahead of time)"
    )
    fp32 = target.parent / "model.onnx"
    if not fp32.exists():
        export_onnx(path, target.parent, fused=settings.encoder_graph == "fused")
    if int8:
        quantize_int8(fp32, target)
    return target


class OnnxEncoder:
    """Mean-pooled, L2-normalised sentence embeddings computed by onnxruntime.

    Two sessions over the same file: queries (a handful of short texts) run on ``query_threads``
    intra-op threads, default 1 — a 10-token MiniLM call is too small to split across cores, and a pool
    of spinning worker threads costs more wake-up time than it saves (and steals the core the request's
    other work needs); passages (ingest batches of 32 long texts) use ``threads`` cores (0: one per core),
    in a session made on first use, so a query-only process (``stitch query``) never loads it.
    ``split="batches"``: that many batches run at once, each on one thread of a one-thread session (a
    one-thread run computes on its caller's thread); ``"operators"``: one batch at a time, its operators
    split over ``threads`` intra-op threads, which wait for each other at every operator, so ingest's own
    Python work on either core stalls the whole call (measured: docs/serving.md §6).
    ``InferenceSession.run`` is thread-safe, so no lock is held: an ingest batch and a query batch can be
    in the model at once."""

    # ``count_tokens`` uses a tokenizer of its own that nothing mutates after ``__init__``: safe from any
    # thread while encodings run, so ingest chunks with it and never loads the transformers tokenizer.
    concurrent_token_counting = True

    def __init__(self, model_file: Path, path: str, *, name: str, batch_size: int = 32, threads: int = 0,
                 query_threads: int = 1, split: str = "batches") -> None:
        from tokenizers import Tokenizer

        if split not in {"batches", "operators"}:
            raise ConfigurationError(f"encoder_split {split!r} is neither 'batches' nor 'operators'")
        self._model_file, self._threads, self._split = model_file, threads, split
        self._cores = threads or available_cores()
        self._query_session = _session(model_file, query_threads)
        self._inputs = {i.name for i in self._query_session.get_inputs()}
        self._path = path
        self._window = _max_seq_length(path)
        # Two configured-once tokenizers (never mutated after this, so safe to share between threads).
        self._embed_tok = Tokenizer.from_file(str(Path(path) / "tokenizer.json"))
        self._embed_tok.enable_truncation(self._window)
        self._embed_tok.no_padding()  # padded per batch in ``_run``, to that batch's longest text
        self._count_tok = Tokenizer.from_file(str(Path(path) / "tokenizer.json"))
        self._count_tok.no_truncation()
        self._count_tok.no_padding()
        self._hf_tokenizer = None
        self._batch_size = batch_size
        self.name = name
        self.max_tokens = self._window - 2
        self._frame = _special_frame(self._embed_tok, self._count_tok)
        # WordPiece after BERT's word split: a text cut where whitespace is tokenises into the tokens on each
        # side, so ingest.chunk may count a section's sentences from the section's tokens and hand the chunks'
        # ids to encode_passages (other tokenizers: every text is tokenised alone, as before).
        self.splits_at_words = _splits_at_words(self._count_tok) and self._frame is not None
        self.dimension = int(self.encode_queries(["dimension probe"]).shape[1])

    @cached_property
    def _passage_session(self):  # noqa: ANN202 - an onnxruntime.InferenceSession
        return _session(self._model_file, 1 if self._split == "batches" else self._threads)

    @cached_property
    def _passage_pool(self) -> ThreadPoolExecutor:
        """The threads that run a call's batches at once (``split="batches"``), made on first use."""
        return ThreadPoolExecutor(self._cores, thread_name_prefix="encode-batch")

    @property
    def tokenizer(self):  # noqa: ANN201 - a transformers fast tokenizer
        """The model's own transformers tokenizer (ingest bounds chunks with it); loaded on first use."""
        if self._hf_tokenizer is None:
            from transformers import AutoTokenizer

            self._hf_tokenizer = AutoTokenizer.from_pretrained(self._path, local_files_only=True)
        return self._hf_tokenizer

    def _run(self, session, rows: list[Sequence[int]]) -> np.ndarray:  # noqa: ANN001 - each row's ids, specials in, unpadded
        if len(rows) == 1:  # a lone query: no padding, no copy loop
            ids = np.array([rows[0]], dtype=np.int64)
            mask = np.ones_like(ids)
        else:
            ids = np.zeros((len(rows), max(len(r) for r in rows)), dtype=np.int64)
            mask = np.zeros_like(ids)
            for row, tokens in enumerate(rows):
                ids[row, : len(tokens)] = tokens
                mask[row, : len(tokens)] = 1
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden = session.run(None, {k: v for k, v in feeds.items() if k in self._inputs})[0]
        pooled = (mask[:, None, :].astype(np.float32) @ hidden)[:, 0] / mask.sum(axis=1, keepdims=True)
        pooled /= np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
        return pooled.astype(np.float32, copy=False)

    def encode_passages(self, texts: list[str], token_ids: Sequence[Sequence[int] | None] | None = None) -> np.ndarray:
        """Vectors of ``texts``. ``token_ids[i]``, when given (and ``splits_at_words``), are the ids of
        ``texts[i]`` without special tokens, as ``tokens`` gives them: that text is not tokenised again."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        rows = self._rows(texts, token_ids)
        # Length buckets: sorted by token count, each batch padded only to its own longest text, so padding
        # (wasted compute, quadratic in attention) stays small.
        order = sorted(range(len(texts)), key=lambda i: len(rows[i]))
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        batches = [order[start : start + self._batch_size] for start in range(0, len(order), self._batch_size)]

        def encode(idx: list[int]) -> None:
            out[idx] = self._run(self._passage_session, [rows[i] for i in idx])

        if self._split == "batches" and self._cores > 1 and len(batches) > 1:
            # Longest first: each pool thread takes the next batch when done, so the call ends on short batches
            # instead of one thread finishing the longest while the other core idles.
            list(self._passage_pool.map(encode, batches[::-1]))
        else:
            for idx in batches:
                encode(idx)
        return out

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        """Vectors for a few short texts in one call on the query session (core/batching.py's batches)."""
        return self._run(self._query_session, [e.ids for e in self._embed_tok.encode_batch(texts)])

    def encode_query(self, text: str) -> np.ndarray:
        return self.encode_queries([text])[0]

    def count_tokens(self, texts: list[str]) -> list[int]:
        return [len(e) for e in self._count_tok.encode_batch(texts, add_special_tokens=False)]

    def tokens(self, texts: list[str]) -> list[tuple[list[int], list[tuple[int, int]]]]:
        """Each text's token ids (no special tokens) and their (start, end) character offsets: ingest.chunk
        counts sentences from them and hands the chunks' ids back to ``encode_passages``."""
        return [(e.ids, e.offsets) for e in self._count_tok.encode_batch(texts, add_special_tokens=False)]

    def _rows(self, texts: list[str], token_ids: Sequence[Sequence[int] | None] | None) -> list[Sequence[int]]:
        """Each text's model input ids: the given ones framed in the special tokens (cut to the window as the
        tokenizer's truncation would), the others tokenised here in one call."""
        if token_ids is None or self._frame is None or not self.splits_at_words:
            return [e.ids for e in self._embed_tok.encode_batch(texts)]
        if len(token_ids) != len(texts):
            raise ValueError(f"token_ids has {len(token_ids)} entries for {len(texts)} texts")
        head, tail = self._frame
        room = self._window - len(head) - len(tail)
        rows: list[Sequence[int]] = [[*head, *ids[:room], *tail] if ids is not None else () for ids in token_ids]
        missing = [i for i, ids in enumerate(token_ids) if ids is None]
        for i, encoding in zip(missing, self._embed_tok.encode_batch([texts[i] for i in missing])):
            rows[i] = encoding.ids
        return rows


def _special_frame(framed, bare) -> tuple[list[int], list[int]] | None:  # noqa: ANN001 - tokenizers.Tokenizer
    """The special ids ``framed`` puts before and after a text's own ids (BERT: [CLS] … [SEP]), read off a
    probe; None when its ids are not the bare ones with a fixed head and tail (then nothing is framed here)."""
    probes = [(framed.encode(t).ids, bare.encode(t, add_special_tokens=False).ids) for t in ("a", "hello world")]
    (full, own), (full2, own2) = probes
    for start in range(len(full) - len(own) + 1):
        if own and full[start : start + len(own)] == own:
            head, tail = full[:start], full[start + len(own):]
            return (head, tail) if full2 == [*head, *own2, *tail] else None
    return None


def _splits_at_words(tokenizer) -> bool:  # noqa: ANN001 - tokenizers.Tokenizer
    """WordPiece behind BERT's pre-tokenizer (split at whitespace and punctuation, characters normalised one
    by one): tokenising a text cut at whitespace gives the tokens of each side."""
    from tokenizers import models, normalizers, pre_tokenizers

    return (isinstance(tokenizer.model, models.WordPiece)
            and isinstance(tokenizer.pre_tokenizer, pre_tokenizers.BertPreTokenizer)
            and isinstance(tokenizer.normalizer, (normalizers.BertNormalizer, type(None))))


def _session(model_file: Path, threads: int):  # noqa: ANN202 - an onnxruntime.InferenceSession
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads  # 0: one per core
    return ort.InferenceSession(str(model_file), options, providers=["CPUExecutionProvider"])


def load_onnx_encoder(settings: Settings, path: str, model_file: Path) -> OnnxEncoder:
    """The encoder for ``settings.encoder_backend`` in {"onnx", "onnx-int8"} from its exported file."""
    backend = settings.encoder_backend
    if backend not in {"onnx", "onnx-int8"}:
        raise ConfigurationError(f"encoder_backend {backend!r} is not an ONNX backend")
    name = f"{os.path.basename(path.rstrip('/'))}+{backend}"
    if settings.encoder_graph == "fused":  # other vectors: the name is in every document's fingerprint
        name += "+fused"
    return OnnxEncoder(
        model_file, path, name=name, batch_size=settings.embed_batch_size, threads=settings.encoder_threads,
        query_threads=settings.encoder_query_threads, split=settings.encoder_split,
    )
