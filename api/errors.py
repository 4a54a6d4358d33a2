"""The one HTTP error shape: ``{"error": {"code", "message", "request_id"}}``."""

from __future__ import annotations

from fastapi.responses import JSONResponse

from core.errors import (
    AuthenticationError,
    ConfigurationError,
    InputError,
    NotFoundError,
    OverloadedError,
    PermissionDeniedError,
    StitchError,
    StoreError,
)

STATUS_FOR = {
    AuthenticationError: 401,
    PermissionDeniedError: 403,
    NotFoundError: 404,
    ConfigurationError: 400,
    InputError: 422,
    StoreError: 503,
    OverloadedError: 503,
}
CODE_FOR_STATUS = {
    400: "bad_request", 401: "unauthenticated", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 413: "payload_too_large", 415: "unsupported_media_type",
    422: "invalid_request", 500: "internal_error", 503: "unavailable",
}


def status_for(exc: StitchError) -> int:
    """HTTP status of a library error (500 for anything unexpected)."""
    return next((s for cls, s in STATUS_FOR.items() if isinstance(exc, cls)), 500)


def error_response(
    status: int, message: str, request_id: str, *, code: str | None = None, retry_after: int | None = None
) -> JSONResponse:
    """The JSON error body; 401s also say how to authenticate, overload says when to come back."""
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    body = {"error": {"code": code or CODE_FOR_STATUS.get(status, "http_error"), "message": message,
                      "request_id": request_id}}
    return JSONResponse(body, status_code=status, headers=headers or None)
