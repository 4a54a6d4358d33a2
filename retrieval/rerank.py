"""Optional second-stage reranking with a cross-encoder (off unless ``STITCH_RERANKER_MODEL`` is set)."""

from __future__ import annotations

import os
import threading
from dataclasses import replace
from typing import Protocol, runtime_checkable

from core import payload as P
from core.config import Settings
from core.errors import ConfigurationError
from core.models import Hit


@runtime_checkable
class Reranker(Protocol):
    """Scores (query, passage) pairs; higher is more relevant."""

    name: str

    def score(self, query: str, passages: list[str]) -> list[float]:
        """One relevance score per passage, in input order."""
        ...


class CrossEncoderReranker:
    """sentence-transformers ``CrossEncoder`` from a local directory (CPU)."""

    def __init__(self, path: str, *, batch_size: int = 32) -> None:
        from sentence_transformers import CrossEncoder

        if not os.path.isdir(path):
            raise ConfigurationError(f"STITCH_RERANKER_MODEL: no model directory at {path!r}")
        self._model = CrossEncoder(path, device="cpu", local_files_only=True)
        self._batch_size = batch_size
        self._lock = threading.Lock()  # torch modules are not re-entrant across threads
        self.name = os.path.basename(path.rstrip("/"))

    def score(self, query: str, passages: list[str]) -> list[float]:
        if not passages:
            return []
        with self._lock:
            scores = self._model.predict([(query, p) for p in passages], batch_size=self._batch_size)
        return [float(s) for s in scores]


def load_reranker(settings: Settings) -> Reranker | None:
    """The reranker the settings name, or None when reranking is off."""
    if not settings.reranker_model:
        return None
    return CrossEncoderReranker(settings.reranker_model, batch_size=settings.embed_batch_size)


def rerank_hits(reranker: Reranker, query: str, hits: list[Hit], *, depth: int) -> list[Hit]:
    """Reorder the first ``depth`` hits by the reranker's score (their new score); the rest follow unchanged.

    Hits below ``depth`` keep their order and are placed after every reranked hit."""
    head, tail = hits[:depth], hits[depth:]
    if not head:
        return hits
    scores = reranker.score(query, [_passage_text(h) for h in head])
    order = sorted(range(len(head)), key=lambda i: (-scores[i], i))
    return [replace(head[i], score=scores[i]) for i in order] + tail


def _passage_text(hit: Hit) -> str:
    title = hit.payload.get(P.TITLE) or ""
    text = hit.payload.get(P.TEXT) or ""
    return f"{title}\n{text}" if title and not text.startswith(title) else text
