"""Long-lived services built once per process from Settings and shared by routes and commands."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from core.config import Settings
from core.encoder import Encoder, load_encoder
from core.store.factory import open_store
from core.store.protocol import VectorStore

if TYPE_CHECKING:  # imported where used: `stitch query` should not pay for ingest's imports
    from entity_resolution.linker import RegistryLinker
    from governance.feedback import FeedbackStore
    from governance.packs import PackStore
    from ingest.ledger import Ledger
    from ingest.pipeline import IngestContext
    from retrieval.context import Retriever


def _file_stamp(path: Path) -> tuple[int, int, int] | None:
    """What changes when a file is rewritten (a stat: microseconds per request)."""
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_mtime_ns, info.st_size, info.st_ino


@dataclass
class Services:
    """Lazily built model, store, ledger and retriever for one Settings."""

    settings: Settings
    on_store_wait: Callable[[str], None] | None = None  # told when another process holds the store

    @cached_property
    def encoder(self) -> Encoder:
        """The model, with concurrent query encodings micro-batched (core/batching.py)."""
        from core.batching import BatchingEncoder

        s = self.settings
        return BatchingEncoder(load_encoder(s), window_ms=s.query_batch_window_ms, max_batch=s.query_batch_max,
                               max_queue=s.query_queue_max)

    @cached_property
    def store(self) -> VectorStore:
        return open_store(self.settings, on_wait=self.on_store_wait)

    @cached_property
    def ledger(self) -> Ledger:
        from ingest.ledger import Ledger

        return Ledger(self.settings.ledger_path)

    @property
    def retriever(self) -> Retriever:
        """The retriever of the tuning file's current state, rebuilt when that file changes (``POST /v1/tune``
        in this process, or in the primary of a serve worker: api.workers); requests already running
        finish with the retriever they started with."""
        pinned = self.__dict__.get("_pinned_retriever")
        if pinned is not None:
            return pinned
        stamp = _file_stamp(self.settings.tuning_path)
        built = self.__dict__.get("_retriever")
        if built is None or built[0] != stamp:  # two threads racing here both build one: harmless
            built = self.__dict__["_retriever"] = (stamp, self._build_retriever())
        return built[1]

    @retriever.setter
    def retriever(self, value: Retriever) -> None:
        """Pin a retriever (a benchmark's canned one), whatever the tuning file says."""
        self.__dict__["_pinned_retriever"] = value

    def _build_retriever(self) -> Retriever:
        from governance.tuning import entity_resolver, load_state
        from retrieval.context import Retriever
        from retrieval.search import SearchPlan

        state = load_state(self.settings.tuning_path)
        return Retriever(
            self.settings, self.encoder, self.store, entity_resolver=entity_resolver(self.entity_registry, state),
            plan=SearchPlan.from_settings(self.settings).tuned(state),
            source_priors=dict(state.source_priors) if state else {},
        )

    def use_store(self, store: VectorStore) -> None:
        """Read and write ``store`` from now on (the leak prober's wrapped store, and back); the tuning-aware
        retriever is rebuilt over it at its next use. A pinned retriever keeps the store it was built with."""
        self.__dict__["store"] = store
        self.__dict__.pop("_retriever", None)

    @cached_property
    def feedback(self) -> "FeedbackStore":
        """Expert labels on context requests."""
        from governance.feedback import FeedbackStore

        return FeedbackStore(self.settings.feedback_path)

    @cached_property
    def entity_registry(self) -> RegistryLinker:
        """The entity registry: EntityLinker for ingest, QueryEntityResolver for retrieval, ``.store`` for routes."""
        from entity_resolution.linker import linker_for

        return linker_for(self.settings)

    @cached_property
    def pack_store(self) -> "PackStore":
        """Records of what each context request returned (explain and replay by request id)."""
        from governance.packs import PackStore

        return PackStore(self.settings.packs_path)

    def ingest_context(self) -> IngestContext:
        """What an ingest job writes to."""
        from ingest.pipeline import IngestContext

        return IngestContext(self.settings, self.encoder, self.store, self.ledger, linker=self.entity_registry)

    def warm_up(self) -> None:
        """Load the model and open the store now, so the first request is not slow."""
        self.retriever.search  # noqa: B018 - builds encoder and store
        self.encoder.encode_query("warm up")
        from retrieval.pack import count_tokens

        count_tokens("warm up")
        # Ingest jobs chunk with the transformers tokenizer unless the encoder counts tokens itself (ONNX):
        # import it now, not inside the first job, where a multi-second import would starve the event loop.
        if not getattr(self.encoder, "concurrent_token_counting", False):
            getattr(self.encoder, "tokenizer", None)
