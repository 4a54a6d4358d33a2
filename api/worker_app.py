"""The app a serve worker runs (api.workers): the hot read routes here, every other request forwarded to the
primary over its private Unix socket, byte for byte and streamed (MCP's event streams included)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import asynccontextmanager

import anyio
import httpx
from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from api.keys import KeyStore
from api.metrics import Metrics
from api.middleware import EdgeMiddleware, read_body
from api.offload import Offload
from api.routes import context
from api.services import Services
from core.config import Settings
from core.user_tokens import UserTokenVerifier
from core.version import VERSION
from governance.audit import query_hasher, trail_for

WORKER_THREADS_PER_CORE = 2  # request threads per core of a worker when Settings.request_threads is 0

# Hop-by-hop headers (RFC 9110 §7.6.1) belong to one connection, not to the request or response.
_HOP = frozenset({b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"te", b"trailer",
                  b"transfer-encoding", b"upgrade"})


class PrimaryProxy:
    """ASGI app: forward the request to the primary and stream its answer back (the worker's router default).

    It talks to httpx's transport, not an ``AsyncClient``: a client keeps a cookie jar, and one caller's
    console session cookie would then ride along on every other caller's forwarded request."""

    def __init__(self, uds: str) -> None:
        self.uds = uds
        self._transport: httpx.AsyncHTTPTransport | None = None

    def _primary(self) -> httpx.AsyncHTTPTransport:
        if self._transport is None:  # created inside the running loop, which it binds to
            self._transport = httpx.AsyncHTTPTransport(uds=self.uds)
        return self._transport

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = scope.setdefault("state", {})
        state["forwarded"] = True  # the primary records metrics and audit for it, once
        body, _ = await read_body(receive, limit=None)  # the edge middleware has bounded and buffered it
        headers = [(k, v) for k, v in scope["headers"] if k.lower() not in _HOP and k.lower() != b"x-request-id"]
        headers.append((b"x-request-id", state["request_id"].encode("ascii")))
        target = scope.get("raw_path") or scope["path"].encode("utf-8")
        if scope.get("query_string"):
            target += b"?" + scope["query_string"]
        request = httpx.Request(scope["method"], "http://primary" + target.decode("latin-1"), headers=headers,
                                content=body)
        response = await self._primary().handle_async_request(request)
        try:
            await send({"type": "http.response.start", "status": response.status_code,
                        "headers": [(k, v) for k, v in response.headers.raw if k.lower() not in _HOP]})
            async with anyio.create_task_group() as group:
                async def _until_disconnect() -> None:  # a caller that leaves ends the upstream stream too
                    while (await receive())["type"] != "http.disconnect":
                        pass
                    group.cancel_scope.cancel()

                group.start_soon(_until_disconnect)
                async for chunk in response.stream:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                group.cancel_scope.cancel()
        finally:
            await response.aclose()

    async def aclose(self) -> None:
        if self._transport is not None:
            await self._transport.aclose()


def create_worker_app(settings: Settings, services: Services, links, *,  # noqa: ANN001 - api.workers.WorkerLinks
                      on_ready: Callable[[], None] | None = None) -> FastAPI:
    """``POST /v1/context`` and ``/v1/search`` answered here; anything else forwarded to the primary."""
    from api.app import install_error_handlers

    metrics, audit = Metrics(), trail_for(settings)
    proxy = PrimaryProxy(links.primary_http)

    @asynccontextmanager
    async def lifespan(app: FastAPI):  # noqa: ANN202
        services.warm_up()
        if on_ready:
            on_ready()
        try:
            yield
        finally:
            await proxy.aclose()
            audit.flush()
            if "pack_store" in services.__dict__:
                services.pack_store.flush()

    # No docs routes of its own: /docs and /openapi.json are forwarded, so they describe the whole API.
    app = FastAPI(title="Stitch", version=VERSION, lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    keys = KeyStore(settings.keys_path)
    for key in links.held_keys:
        keys.hold(key)
    app.state.services, app.state.metrics, app.state.key_store = services, metrics, keys
    # A worker's store calls wait on the primary's socket without the GIL, so two request threads per core
    # keep its cores busy: 50 clients, 2 workers, load ~10, 2 / 4 / 6 / 8 threads did 105-108 / 141-175 /
    # 107-142 / 145 requests/s (docs/serving.md "Serving processes").
    app.state.offload = Offload.from_settings(settings, per_core=WORKER_THREADS_PER_CORE)
    app.state.audit, app.state.query_hasher = audit, query_hasher(settings)
    app.state.user_token_header = settings.user_token_header
    app.state.user_tokens = UserTokenVerifier.from_settings(settings)
    install_error_handlers(app)
    app.include_router(context.router)
    app.router.default = proxy
    app.add_middleware(EdgeMiddleware, max_body=settings.max_request_bytes, metrics=metrics, audit=audit)
    return app
