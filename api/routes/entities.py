"""``/v1/entities``: search, show, merge and split entities; every field filtered by the principal's ACL."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from api.audit import note, query_hash
from api.deps import ContextKey, PrincipalId, Roles, ServicesDep, principal_for, require_scope
from api.keys import ApiKey
from core.access import principal_tokens

router = APIRouter(prefix="/v1", tags=["entities"])
WriteKey = Annotated[ApiKey, Depends(require_scope("entities:write"))]


class MentionOut(BaseModel):
    source: str
    doc_id: str
    surface: str


class EntityDetailOut(BaseModel):
    entity_id: str
    type: str
    name: str
    aliases: list[str]
    documents: int
    mentions: list[MentionOut] = []
    evidence: list[dict] = []


class EntityListOut(BaseModel):
    entities: list[EntityDetailOut]


class EntityIdOut(BaseModel):
    entity_id: str


class MergeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    other_id: str = Field(..., min_length=1, max_length=64)
    note: str = Field("", max_length=1000)


class SplitIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    aliases: list[str] = Field(..., min_length=1, max_length=256)
    note: str = Field("", max_length=1000)


@router.get("/entities", response_model=EntityListOut)
async def search_entities(
    http: Request, key: ContextKey, services: ServicesDep, principal_id: PrincipalId = None,
    role: Roles = [],  # noqa: B006 - FastAPI query list
    q: Annotated[str, Query(max_length=256)] = "",
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
) -> dict:
    """Entities whose visible aliases contain ``q`` (``?q=acme&principal_id=alice&role=sales``)."""
    from entity_resolution.views import list_entities

    note(http, query_hash=query_hash(http, q) if q else None)
    tokens = principal_tokens(principal_for(http, key, principal_id, role))
    views = await run_in_threadpool(list_entities, services.entity_registry.store, query=q, acl_tokens=tokens, limit=limit)
    note(http, entity_ids=[v.entity_id for v in views])
    return {"entities": [v.to_dict() for v in views]}


@router.get("/entities/{entity_id}", response_model=EntityDetailOut)
async def get_entity(
    http: Request, entity_id: str, key: ContextKey, services: ServicesDep, principal_id: PrincipalId = None,
    role: Roles = [],  # noqa: B006
) -> dict:
    """One entity as the principal may see it (404 when none of its documents is visible)."""
    from entity_resolution.views import entity_view

    note(http, entity_ids=[entity_id[:128]])
    tokens = principal_tokens(principal_for(http, key, principal_id, role))
    view = await run_in_threadpool(entity_view, services.entity_registry.store, entity_id, acl_tokens=tokens)
    return view.to_dict()


# Write responses carry only ids: the key is not tied to a principal, so no alias or mention is echoed.
@router.post("/entities/{entity_id}/merge", response_model=EntityIdOut)
async def merge_entity(http: Request, entity_id: str, body: MergeIn, key: WriteKey, services: ServicesDep) -> dict:
    """Steward merge of ``other_id`` into this entity; persists across re-runs. Returns the surviving id."""
    from entity_resolution.steward import merge_entities

    note(http, action="entity_merge", entity_ids=[entity_id[:128], body.other_id])

    survivor = await run_in_threadpool(
        merge_entities, services.entity_registry.store, entity_id, body.other_id, note=body.note, chunks=services.store
    )
    return {"entity_id": survivor}


@router.post("/entities/{entity_id}/split", response_model=EntityIdOut)
async def split_entity_route(http: Request, entity_id: str, body: SplitIn, key: WriteKey, services: ServicesDep) -> dict:
    """Steward split: the listed aliases become a new entity, whose id is returned; persists across re-runs."""
    from entity_resolution.steward import split_entity

    note(http, action="entity_split", entity_ids=[entity_id[:128]])

    new_id = await run_in_threadpool(
        split_entity, services.entity_registry.store, entity_id, body.aliases, note=body.note, chunks=services.store
    )
    note(http, entity_ids=[entity_id[:128], new_id])
    return {"entity_id": new_id}
