"""The edge of every request (pure ASGI, outermost): request id, body-size limit before parsing,
JSON errors for anything unexpected, metrics and the audit trail (queued: the loop never waits on disk)."""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.audit import request_record
from api.errors import error_response
from api.metrics import Metrics, method_label
from governance.audit import AuditTrail, now_iso

log = logging.getLogger("stitch.api")
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# Requests that return, change or deny data (health checks and docs pages are not audited).
_AUDITED = ("/v1/", "/metrics", "/mcp", "/console")


class _TooLarge(Exception):
    pass


def _request_id(scope: Scope) -> str:
    """The caller's X-Request-ID when it is a sane token (for tracing across services), else a new one."""
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            text = value.decode("latin-1")
            if _SAFE_ID.match(text):
                return text
    return uuid.uuid4().hex


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def read_body(receive: Receive, limit: int | None) -> tuple[bytes, list[Message]]:
    """The whole body (raises _TooLarge past ``limit``; None: no bound), and any non-body message seen meanwhile."""
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(parts), [message]
        chunk = message.get("body", b"")
        size += len(chunk)
        if limit is not None and size > limit:
            raise _TooLarge
        parts.append(chunk)
        if not message.get("more_body", False):
            return b"".join(parts), []


def _replay(body: bytes, pending: list[Message], receive: Receive) -> Receive:
    queue: list[Message] = [{"type": "http.request", "body": body, "more_body": False}, *pending]

    async def _receive() -> Message:
        return queue.pop(0) if queue else await receive()

    return _receive


class EdgeMiddleware:
    """Wraps the FastAPI app; see the module docstring."""

    def __init__(self, app: ASGIApp, *, max_body: int, metrics: Metrics, audit: AuditTrail) -> None:
        self.app, self.max_body, self.metrics, self.audit = app, max_body, metrics, audit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        outcome = {"status": 500, "started": False}

        async def _send(message: Message) -> None:
            if message["type"] == "http.response.start":
                outcome.update(status=message["status"], started=True)
                MutableHeaders(scope=message)["X-Request-ID"] = request_id
            await send(message)

        try:
            await self._dispatch(scope, receive, _send, request_id)
        except Exception:  # noqa: BLE001 - the last line of defence: log it, answer with the error model
            log.exception("unhandled error in %s %s (request %s)", scope["method"], scope["path"], request_id)
            if not outcome["started"]:
                await error_response(500, "internal error", request_id)(scope, receive, _send)
        finally:
            self._record(scope, int(outcome["status"]), time.perf_counter() - started, request_id)

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send, request_id: str) -> None:
        declared = _declared_length(scope)
        try:
            if declared is not None and declared > self.max_body:
                raise _TooLarge
            body, pending = await read_body(receive, self.max_body)
        except _TooLarge:
            message = f"request body exceeds {self.max_body} bytes"
            await error_response(413, message, request_id)(scope, receive, send)
            return
        await self.app(scope, _replay(body, pending, receive), send)

    def _record(self, scope: Scope, status: int, seconds: float, request_id: str) -> None:
        if scope.get("state", {}).get("forwarded"):
            return  # a serve worker forwarded it: the primary that answered records it (api.worker_app)
        route = getattr(scope.get("route"), "path", None) or "unmatched"
        self.metrics.observe_request(method=scope["method"], route=route, status=status, seconds=seconds)
        if not scope["path"].startswith(_AUDITED):
            return
        self.audit.record(request_record(
            scope.get("state", {}), request_id=request_id, time=now_iso(), method=method_label(scope["method"]),
            route=route, status=status, latency_ms=round(seconds * 1000, 2),
        ))
