"""Vector store protocol and its two Qdrant implementations (embedded edge, server client)."""

from core.store.protocol import FusionKind, HybridQuery, PrefetchSpec, VectorStore
from core.store.factory import open_store

__all__ = ["FusionKind", "HybridQuery", "PrefetchSpec", "VectorStore", "open_store"]
