"""``create_app()``: the FastAPI application factory (nothing is built at import time)."""

from __future__ import annotations

import uuid
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.keys import KeyStore
from api.routes import context, documents, health
from api.services import Services
from core.config import Settings, get_settings
from core.errors import (
    AuthenticationError,
    ConfigurationError,
    NotFoundError,
    PermissionDeniedError,
    StitchError,
    StoreError,
)

_STATUS = {
    AuthenticationError: 401,
    PermissionDeniedError: 403,
    NotFoundError: 404,
    ConfigurationError: 400,
    StoreError: 503,
}


def _error(request: Request, status: int, code: str, message: str) -> JSONResponse:
    request_id = getattr(request.state, "request_id", uuid.uuid4().hex)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(
        {"error": {"code": code, "message": message, "request_id": request_id}}, status_code=status, headers=headers
    )


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StitchError)
    async def _stitch_error(request: Request, exc: StitchError) -> JSONResponse:
        status = next((s for cls, s in _STATUS.items() if isinstance(exc, cls)), 500)
        return _error(request, status, exc.code, str(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:10]
        )
        return _error(request, 422, "invalid_request", problems)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(request, exc.status_code, "http_error", str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        return _error(request, 500, "internal_error", "internal error")


def create_app(settings: Settings | None = None, *, services: Services | None = None) -> FastAPI:
    """Build the API for ``settings`` (or the process settings); services load at startup."""
    settings = settings or get_settings()
    services = services or Services(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):  # noqa: ANN202
        services.warm_up()
        yield

    app = FastAPI(
        title="Stitch",
        version="0.1.0",
        summary="Grounded, token-budgeted, ACL-filtered context packs from enterprise systems.",
        lifespan=lifespan,
    )
    app.state.services = services
    app.state.key_store = KeyStore(settings.keys_path)

    @app.middleware("http")
    async def _request_id(request: Request, call_next):  # noqa: ANN001, ANN202
        request.state.request_id = uuid.uuid4().hex
        response = await call_next(request)
        response.headers["X-Request-ID"] = request.state.request_id
        return response

    _install_error_handlers(app)
    for module in (health, context, documents):
        app.include_router(module.router)
    return app
