"""Exceptions of the Stitch client: one per error class of the API's error model
``{"error": {"code", "message", "request_id"}}``."""

from __future__ import annotations


class StitchError(Exception):
    """Base class: anything the Stitch API (or the way to it) refused or failed."""

    def __init__(self, message: str, *, status: int | None = None, code: str = "", request_id: str = "") -> None:
        super().__init__(message)
        self.message, self.status, self.code, self.request_id = message, status, code, request_id

    def __str__(self) -> str:
        where = f" (HTTP {self.status} {self.code}, request {self.request_id})" if self.status else ""
        return f"{self.message}{where}"


class AuthenticationError(StitchError):
    """401: no key, or an unknown/revoked key."""


class PermissionDeniedError(StitchError):
    """403: the key lacks a scope, or asserts a role or principal it may not."""


class NotFoundError(StitchError):
    """404: missing, or not visible to the principal (the API does not say which)."""


class InvalidRequestError(StitchError):
    """400/413/422: the request was malformed or named something unknown (e.g. a filter value)."""


class UnavailableError(StitchError):
    """429/503 after every retry: the server is overloaded or its store is unavailable."""


class ServerError(StitchError):
    """Any other 5xx."""


class TransportError(StitchError):
    """The server could not be reached (connection refused, timeout) after every retry."""


def error_for(status: int, body: object) -> StitchError:
    """The exception for one error response (falls back to the status when the body is not the model)."""
    error = body.get("error") if isinstance(body, dict) else None
    error = error if isinstance(error, dict) else {}
    message = str(error.get("message") or f"HTTP {status}")
    kind = {401: AuthenticationError, 403: PermissionDeniedError, 404: NotFoundError,
            429: UnavailableError, 503: UnavailableError}.get(status)
    if kind is None:
        kind = InvalidRequestError if 400 <= status < 500 else ServerError
    return kind(message, status=status, code=str(error.get("code", "")), request_id=str(error.get("request_id", "")))
