"""Python client for the Stitch REST API, and (``stitch_client.llama_index``) a LlamaIndex retriever."""

from stitch_client.client import StitchClient
from stitch_client.errors import (
    AuthenticationError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    ServerError,
    StitchError,
    TransportError,
    UnavailableError,
)
from stitch_client.models import Citation, ContextPack, Document, Entity, Passage, SearchHit

__all__ = [
    "AuthenticationError", "Citation", "ContextPack", "Document", "Entity", "InvalidRequestError", "NotFoundError",
    "Passage", "PermissionDeniedError", "SearchHit", "ServerError", "StitchClient", "StitchError", "TransportError",
    "UnavailableError",
]
