"""One exception hierarchy for the whole library; edges translate it to HTTP/CLI errors."""

from __future__ import annotations


class StitchError(Exception):
    """Base class of every error Stitch raises on purpose."""

    code = "stitch_error"


class ConfigurationError(StitchError):
    """Settings or a manifest are invalid (CLI exit 2, HTTP 400)."""

    code = "invalid_configuration"


class ManifestError(ConfigurationError):
    """A source manifest is invalid; the message names the file and the key."""

    code = "invalid_manifest"


class SyncRefusedError(ConfigurationError):
    """A sync would take over another manifest's source or delete too much of one; nothing was written."""

    code = "sync_refused"


class InputError(StitchError):
    """One input (file, row) could not be read; the job continues without it."""

    code = "invalid_input"


class NotFoundError(StitchError):
    """The thing does not exist, or the principal may not see it (same message for both)."""

    code = "not_found"


class AuthenticationError(StitchError):
    """No or unknown API key (HTTP 401)."""

    code = "unauthenticated"


class PermissionDeniedError(StitchError):
    """The key lacks a scope or asserts a role it may not (HTTP 403)."""

    code = "forbidden"


class StoreError(StitchError):
    """The vector store failed or is unreachable."""

    code = "store_unavailable"


class OverloadedError(StitchError):
    """Too much work is queued to take more now (HTTP 503 with Retry-After); nothing was done."""

    code = "overloaded"

    def __init__(self, message: str, *, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after
