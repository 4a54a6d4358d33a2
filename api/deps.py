"""FastAPI dependencies: services, the authenticated key, the asserted principal, jobs and metrics."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from api.jobs import JobRunner
from api.keys import ApiKey, KeyStore
from api.metrics import Metrics
from api.services import Services
from core.models import Principal


def get_services(request: Request) -> Services:
    return request.app.state.services


def get_key_store(request: Request) -> KeyStore:
    return request.app.state.key_store


def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


def get_jobs(request: Request) -> JobRunner:
    return request.app.state.jobs


def authenticated_key(request: Request, keys: Annotated[KeyStore, Depends(get_key_store)]) -> ApiKey:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    key = keys.authenticate(token.strip() if scheme.lower() == "bearer" else None)
    request.state.key_id = key.key_id
    return key


def require_scope(scope: str):  # noqa: ANN201 - a FastAPI dependency
    """Dependency: the caller's key must hold ``scope``."""

    def _check(key: Annotated[ApiKey, Depends(authenticated_key)]) -> ApiKey:
        key.require_scope(scope)
        return key

    return _check


ServicesDep = Annotated[Services, Depends(get_services)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
JobsDep = Annotated[JobRunner, Depends(get_jobs)]
ContextKey = Annotated[ApiKey, Depends(require_scope("context"))]
IngestKey = Annotated[ApiKey, Depends(require_scope("ingest"))]


def principal_for(key: ApiKey, principal_id: str, roles: list[str]) -> Principal:
    """The principal a key asserts; 403 if it asserts a role the key may not."""
    normalised = tuple(dict.fromkeys(r.strip() for r in roles))
    key.require_roles(normalised)
    return Principal(principal_id.strip(), normalised)
