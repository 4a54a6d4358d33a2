"""A LlamaIndex retriever backed by ``POST /v1/context``: Stitch's ACL-filtered, stitched, cited passages as
``NodeWithScore``, so a query engine gets them with one line::

    engine = RetrieverQueryEngine.from_args(StitchRetriever(client, principal_id="alice", roles=["sales"]), llm=llm)
"""

from __future__ import annotations

from collections.abc import Sequence

from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.callbacks import CallbackManager
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from stitch_client.client import StitchClient
from stitch_client.models import ContextPack, Passage

# Kept on every node for citing and tracing, but not shown to the LLM (it sees title and source only).
_HIDDEN_FROM_LLM = ["doc_id", "chunk_ids", "uri", "span_start", "span_end", "pages", "citation", "request_id",
                    "index_as_of", "indexed_at", "updated_at", "entity_ids", "principal_id"]


class StitchRetriever(BaseRetriever):
    """Retrieve for one principal (the end user the answer is for); every call is one context pack."""

    def __init__(
        self, client: StitchClient, *, principal_id: str, roles: Sequence[str] = (), top_k: int = 8,
        max_tokens: int = 2000, sources: Sequence[str] = (), callback_manager: CallbackManager | None = None,
    ) -> None:
        super().__init__(callback_manager=callback_manager)
        self._client, self._principal_id, self._roles = client, principal_id, tuple(roles)
        self._top_k, self._max_tokens, self._sources = top_k, max_tokens, tuple(sources)
        self.last_pack: ContextPack | None = None

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        pack = self._client.context(query_bundle.query_str, principal_id=self._principal_id, roles=self._roles,
                                    top_k=self._top_k, max_tokens=self._max_tokens, sources=self._sources)
        self.last_pack = pack
        return [NodeWithScore(node=_node(p, pack), score=p.score) for p in pack.passages]


def _node(passage: Passage, pack: ContextPack) -> TextNode:
    indexed = {c.id: c.indexed_at for c in pack.citations}
    metadata = {
        "title": passage.title, "source": passage.source, "doc_id": passage.doc_id, "uri": passage.uri,
        "citation": passage.citation, "chunk_ids": list(passage.chunk_ids), "span_start": passage.span["start"],
        "span_end": passage.span["end"], "pages": list(passage.pages), "updated_at": passage.updated_at,
        "entity_ids": list(passage.entity_ids or []), "request_id": pack.request_id, "index_as_of": pack.index_as_of,
        "indexed_at": indexed.get(passage.citation),
        "principal_id": (pack.filtered_for or {}).get("principal_id"),
    }
    return TextNode(
        id_=f"{passage.doc_id}#{passage.span['start']}-{passage.span['end']}", text=passage.text, metadata=metadata,
        start_char_idx=passage.span["start"], end_char_idx=passage.span["end"],
        excluded_llm_metadata_keys=_HIDDEN_FROM_LLM, excluded_embed_metadata_keys=_HIDDEN_FROM_LLM,
    )
