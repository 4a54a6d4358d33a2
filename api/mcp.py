"""The MCP server (official ``mcp`` SDK): the REST read operations as tools with typed, structured output.

Two doors, one set of tools: streamable HTTP at ``/mcp`` inside the FastAPI app (stateless, JSON
responses, behind the same API-key authentication as ``/v1``), and stdio (``stitch mcp``) acting with the
key in ``STITCH_API_KEY``. Every tool calls the same ``api.reads`` function as its REST route, with the
principal built by the same ``api.deps.principal_for``, so ACL filtering is identical by construction.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import date, datetime
from typing import Annotated, Any

import anyio

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.transport_security import TransportSecuritySettings
from mcp_types import ToolAnnotations
from pydantic import Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from api import reads
from api.audit import content_hash, note, query_hash
from api.deps import authenticate, principal_for
from api.errors import error_response, status_for
from api.keys import ApiKey, KeyStore
from api.routes.entities import EntityDetailOut, EntityListOut
from api.schemas import ContextOut, DocumentOut, FiltersIn, SearchOut
from api.services import Services
from core.config import Settings
from core.identity import check_assertion, decide_principal
from core.errors import AuthenticationError, StitchError
from core.version import VERSION
from retrieval.context import ContextRequest

INSTRUCTIONS = """Stitch answers with enterprise context a given end user may see.
Call get_context first: it returns a token-budgeted context pack whose passages carry [n] citation markers;
cite them as [n] and follow a citation's doc_id with read_document when the whole document is needed.
Always pass the end user's principal_id and roles: results are filtered to what they may see, and the
result's filtered_for says for whom. find_entities / show_entity resolve names of companies and people
across systems; their entity_id can narrow get_context via entity_ids."""

KeyOf = Callable[[Context], ApiKey]

PrincipalId = Annotated[str | None, Field(min_length=1, max_length=256, description=(
    "id of the end user the answer is for, e.g. 'alice' (adds user:<id> documents); the API key must be granted "
    "that id; omit for no particular user"))]
Roles = Annotated[list[str], Field(max_length=64, description=(
    "the end user's roles, e.g. ['sales']; only documents these roles (or the user id) may see are searched; "
    "the API key must be allowed to assert them"))]
Query = Annotated[str, Field(min_length=1, max_length=4000, description="what the context is for, in natural language")]
Sources = Annotated[list[str], Field(max_length=64, description=(
    "only these systems, e.g. ['crm', 'email']; a source the user cannot see is an error, not a wider search"))]
EntityIds = Annotated[list[str], Field(max_length=256, description="only passages about these ent_… ids (find_entities)")]
UpdatedAfter = Annotated[date | datetime | None, Field(description="only documents updated on/after this ISO date")]
_READ_ONLY = ToolAnnotations(readOnlyHint=True, destructiveHint=False, idempotentHint=True, openWorldHint=False)


def _request_of(ctx: Context) -> Request | None:
    request = ctx.request_context.request
    return request if isinstance(request, Request) else None


def key_from_http(ctx: Context) -> ApiKey:
    """The key McpAuthGate authenticated for this HTTP request."""
    request = _request_of(ctx)
    key = request.state.mcp_key if request is not None and hasattr(request.state, "mcp_key") else None
    if key is None:
        raise AuthenticationError("missing API key: send 'Authorization: Bearer <key>'")
    return key


def _request_id(ctx: Context) -> str:
    request = _request_of(ctx)
    known = getattr(request.state, "request_id", None) if request is not None else None
    return known or uuid.uuid4().hex


def _audit(ctx: Context, **fields: Any) -> None:
    request = _request_of(ctx)
    if request is not None:  # the edge middleware writes the record when the HTTP request ends
        note(request, **fields)


def _call(operation: Callable[[], Any]) -> Any:
    """Run one library operation; a Stitch error becomes a tool error with the same message as REST."""
    try:
        return operation()
    except StitchError as exc:
        raise ToolError(f"{exc.code}: {exc}") from exc


def build_mcp_server(services: Services, *, key_of: KeyOf, lifespan=None) -> MCPServer:  # noqa: ANN001
    """The MCP server whose tools act with the key ``key_of(ctx)`` returns for each call."""
    server = MCPServer("stitch", title="Stitch", instructions=INSTRUCTIONS, version=VERSION, lifespan=lifespan,
                       log_level="WARNING")

    def principal(ctx: Context, principal_id: str | None, roles: list[str]):  # noqa: ANN202
        request = _request_of(ctx)
        if request is not None:  # THE identity function of every REST read route (user token header included)
            return principal_for(request, key_of(ctx), principal_id, roles)
        # stdio: no HTTP request, so no user token; the same decision on the key's grant alone
        return decide_principal(key_of(ctx), check_assertion(principal_id, roles, where="principal"))

    def context_request(ctx, query, principal_id, roles, top_k, max_tokens, sources, entity_ids, updated_after):  # noqa: ANN001, ANN202, PLR0913
        request = _request_of(ctx)
        if request is not None:
            note(request, query_hash=query_hash(request, query))
        filters = reads.filters_from(FiltersIn(sources=sources, entity_ids=entity_ids, updated_after=updated_after))
        return ContextRequest(query, principal(ctx, principal_id, roles), top_k, max_tokens, filters)

    @server.tool(annotations=_READ_ONLY)
    def get_context(
        ctx: Context, query: Query, principal_id: PrincipalId = None, roles: Roles = [],  # noqa: B006
        max_tokens: Annotated[int, Field(ge=1, le=100_000, description="token budget of the pack (cl100k_base)")] = 2000,
        top_k: Annotated[int, Field(ge=1, le=100, description="at most this many passages")] = 8,
        sources: Sources = [],  # noqa: B006 - copied by pydantic per call
        entity_ids: EntityIds = [],  # noqa: B006
        updated_after: UpdatedAfter = None,
    ) -> ContextOut:
        """Grounded, cited context for the end user: passages from every system they may see, stitched and
        packed to the token budget, with citations, index_as_of and filtered_for (same as POST /v1/context)."""
        def run() -> dict:
            request = context_request(ctx, query, principal_id, roles, top_k, max_tokens, sources, entity_ids,
                                      updated_after)
            return reads.context_answer(services, request, key_id=key_of(ctx).key_id, request_id=_request_id(ctx))

        answer = _call(run)
        _audit(ctx, doc_ids=sorted({p["doc_id"] for p in answer["passages"]}),
               chunk_ids=[c for p in answer["passages"] for c in p["chunk_ids"]],
               content_hashes=[content_hash(p["text"]) for p in answer["passages"]])
        return ContextOut.model_validate(answer)

    @server.tool(annotations=_READ_ONLY)
    def search(
        ctx: Context, query: Query, principal_id: PrincipalId = None, roles: Roles = [],  # noqa: B006
        top_k: Annotated[int, Field(ge=1, le=1000, description="number of ranked chunks")] = 10,
        sources: Sources = [],  # noqa: B006
        entity_ids: EntityIds = [],  # noqa: B006
        updated_after: UpdatedAfter = None,
    ) -> SearchOut:
        """Ranked chunk hits (hybrid dense + BM25) the end user may see, without stitching or packing
        (same as POST /v1/search). Prefer get_context to answer questions."""
        def run() -> dict:
            request = context_request(ctx, query, principal_id, roles, top_k, 2000, sources, entity_ids, updated_after)
            return reads.search_answer(services, request, request_id=_request_id(ctx))

        answer = _call(run)
        _audit(ctx, doc_ids=sorted({h["doc_id"] for h in answer["hits"]}), chunk_ids=[h["chunk_id"] for h in answer["hits"]],
               content_hashes=[content_hash(h["text"]) for h in answer["hits"]])
        return SearchOut.model_validate(answer)

    @server.tool(annotations=_READ_ONLY)
    def read_document(
        ctx: Context,
        doc_id: Annotated[str, Field(min_length=1, max_length=1024,
                                     description="a citation's doc_id, e.g. 'wiki:company-handbook.md'")],
        principal_id: PrincipalId = None, roles: Roles = [],  # noqa: B006
    ) -> DocumentOut:
        """The full text of a cited document, if the end user may see it (hidden and missing look alike)."""
        answer = _call(lambda: reads.document_answer(services, doc_id, principal(ctx, principal_id, roles)))
        _audit(ctx, doc_ids=[answer["doc_id"]], content_hashes=[content_hash(answer["text"])])
        return DocumentOut.model_validate(answer)

    @server.tool(annotations=_READ_ONLY)
    def find_entities(
        ctx: Context,
        query: Annotated[str, Field(max_length=256, description="part of a name, e.g. 'acme'; empty = most mentioned")],
        principal_id: PrincipalId = None, roles: Roles = [],  # noqa: B006
        limit: Annotated[int, Field(ge=1, le=200)] = 20,
    ) -> EntityListOut:
        """Companies, people and other entities whose names (as seen in documents the end user may see)
        contain the query, most-mentioned first, with their aliases across systems."""
        return EntityListOut.model_validate(
            _call(lambda: reads.entities_answer(services, principal(ctx, principal_id, roles), query=query, limit=limit)))

    @server.tool(annotations=_READ_ONLY)
    def show_entity(
        ctx: Context,
        entity_id: Annotated[str, Field(min_length=1, max_length=64, description="an ent_… id from find_entities")],
        principal_id: PrincipalId = None, roles: Roles = [],  # noqa: B006
    ) -> EntityDetailOut:
        """One entity: its aliases, which documents mention each one, and the evidence for its merges —
        only through documents the end user may see."""
        return EntityDetailOut.model_validate(
            _call(lambda: reads.entity_answer(services, entity_id, principal(ctx, principal_id, roles))))

    return server


class McpAuthGate:
    """ASGI wrapper of ``/mcp``: the same key check as every ``/v1`` route (401/403 in the REST error
    model) before the MCP transport sees the request; the key rides in the request state to the tools."""

    def __init__(self, app: ASGIApp, keys: KeyStore, *, path: str) -> None:
        self.app, self.keys, self.path = app, keys, path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["route"] = self  # metrics and audit label the request with self.path, as for a /v1 route
        request = Request(scope)
        try:
            key = authenticate(request, self.keys)
            key.require_scope("context")
        except StitchError as exc:
            request_id = scope.get("state", {}).get("request_id", "")
            await error_response(status_for(exc), str(exc), request_id, code=exc.code)(scope, receive, send)
            return
        request.state.mcp_key = key
        await self.app(scope, receive, send)


def mount_mcp(app, services: Services, keys: KeyStore) -> Callable[[], AbstractAsyncContextManager]:  # noqa: ANN001
    """Add ``/mcp`` (streamable HTTP, stateless) to a FastAPI app; returns the context manager its
    lifespan must enter. The SDK's session manager runs once, so each lifespan builds a fresh one."""
    from starlette.routing import Route

    server = build_mcp_server(services, key_of=key_from_http)
    gate = McpAuthGate(_not_started, keys, path="/mcp")
    app.router.routes.append(Route("/mcp", gate))

    @asynccontextmanager
    async def running():  # noqa: ANN202
        # DNS-rebinding protection guards servers that trust the browser's origin; /mcp trusts only the
        # bearer key, which a rebinding page cannot know, so any Host (a proxy, a container name) is fine.
        transport = server.streamable_http_app(
            streamable_http_path="/mcp", stateless_http=True, json_response=True,
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
            max_request_body_size=services.settings.max_request_bytes,
        )
        gate.app = transport.routes[0].endpoint
        async with server.session_manager.run():
            yield
        gate.app = _not_started

    return running


async def _not_started(scope: Scope, receive: Receive, send: Send) -> None:
    await error_response(503, "the MCP transport is not running", scope.get("state", {}).get("request_id", ""))(
        scope, receive, send)


def run_stdio(settings: Settings) -> None:
    """Serve the tools over stdio with the key in ``STITCH_API_KEY`` (``stitch mcp``); the model loads once
    the transport owns stdout, so nothing the libraries print can corrupt the protocol stream.

    While a ``stitch serve`` holds this data dir's embedded store, the messages are relayed to its ``/mcp``
    instead (with the same key, so the server applies that key's grant), like ``stitch query`` forwards."""
    if settings.api_key is None:
        raise AuthenticationError("set STITCH_API_KEY to a key with the 'context' scope "
                                  "(stitch keys create --scope context --role …)")
    plaintext = settings.api_key.get_secret_value()
    key = KeyStore(settings.keys_path).authenticate(plaintext)
    key.require_scope("context")
    from api.serving import running_server

    server = running_server(settings)
    if server is not None:
        anyio.run(relay_stdio_to_http, f"{server[0]}/mcp", plaintext)
        return
    services = Services(settings)

    @asynccontextmanager
    async def warm(_server):  # noqa: ANN001, ANN202
        await run_in_threadpool(services.warm_up)
        yield {}

    build_mcp_server(services, key_of=lambda _ctx: key, lifespan=warm).run("stdio")


async def relay_stdio_to_http(url: str, key: str) -> None:
    """Pass every JSON-RPC message between this process's stdio and the streamable-HTTP endpoint ``url``
    (the SDK's own transports on both sides), until the local client closes stdin."""
    from mcp.client.streamable_http import streamable_http_client
    from mcp.server.stdio import stdio_server
    from mcp.shared._httpx_utils import create_mcp_http_client

    async def pump(source, sink, done: anyio.CancelScope | None = None) -> None:  # noqa: ANN001
        async for message in source:
            if not isinstance(message, Exception):  # a line that is not JSON-RPC: nothing to relay
                await sink.send(message)
        if done is not None:
            done.cancel()

    http = create_mcp_http_client(headers={"Authorization": f"Bearer {key}"})
    async with http, stdio_server() as (local_in, local_out), \
            streamable_http_client(url, http_client=http) as (remote_in, remote_out), anyio.create_task_group() as tg:
        tg.start_soon(pump, local_in, remote_out, tg.cancel_scope)
        tg.start_soon(pump, remote_in, local_out)
