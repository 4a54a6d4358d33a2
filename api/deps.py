"""FastAPI dependencies: services, the authenticated key, the asserted principal, jobs and metrics."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request

from api.audit import note
from api.jobs import Confinement, JobRunner
from api.keys import ApiKey, KeyStore
from api.metrics import Metrics
from api.services import Services
from core.errors import AuthenticationError
from core.identity import VerifiedUser, check_assertion, decide_principal
from core.models import Principal


async def get_services(request: Request) -> Services:
    return request.app.state.services


async def get_key_store(request: Request) -> KeyStore:
    return request.app.state.key_store


async def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


async def get_jobs(request: Request) -> JobRunner:
    return request.app.state.jobs


async def get_confinement(request: Request) -> Confinement:
    return request.app.state.confinement


def authenticate(request: Request, keys: KeyStore) -> ApiKey:
    """The key of the request's bearer token (401 otherwise), noted for the audit record."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    key = keys.authenticate(token.strip() if scheme.lower() == "bearer" else None)
    request.state.key_id = key.key_id
    return key


# The dependencies are ``async def`` on purpose: FastAPI runs a plain ``def`` dependency in the
# threadpool, a thread hop per dependency per request that queued behind running retrievals (issue 13).
# Each of these is a dict lookup, a stat of the keys file and one sha256: nothing that blocks the loop.
async def authenticated_key(request: Request, keys: Annotated[KeyStore, Depends(get_key_store)]) -> ApiKey:
    return authenticate(request, keys)


def require_scope(scope: str):  # noqa: ANN201 - a FastAPI dependency
    """Dependency: the caller's key must hold ``scope``."""

    async def _check(key: Annotated[ApiKey, Depends(authenticated_key)]) -> ApiKey:
        key.require_scope(scope)
        return key

    _check.scope = scope  # read by tests/test_readme_claims.py: the README's scope table is checked against it
    return _check


ServicesDep = Annotated[Services, Depends(get_services)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
JobsDep = Annotated[JobRunner, Depends(get_jobs)]
ConfinementDep = Annotated[Confinement, Depends(get_confinement)]
ContextKey = Annotated[ApiKey, Depends(require_scope("context"))]
IngestKey = Annotated[ApiKey, Depends(require_scope("ingest"))]


def principal_for(request: Request, key: ApiKey, principal_id: str | None, roles: list[str]) -> Principal:
    """THE identity decision of every read route: the verified user token if one is sent, else the
    caller's assertion within the key's grant.

    401 for a bad user token, 422 for a malformed id or role, 403 for an id or role the key (or the
    token) does not grant. The audit record gets what was asserted, then what was decided.
    """
    note(request, principal_id=principal_id, roles=list(roles))
    asserted = check_assertion(principal_id, roles, where="principal")
    verified = _verified_user(request)
    principal = decide_principal(key, asserted, verified=verified)
    note(request, principal_id=principal.id, roles=list(principal.roles),
         identity="user_token" if verified else "api_key")
    return principal


def _verified_user(request: Request) -> VerifiedUser | None:
    """The end user of the token in the user-token header, if the request carries one."""
    state = request.app.state  # a mounted sub-app (MCP) without these attributes refuses tokens: 401
    header = getattr(state, "user_token_header", "X-Stitch-User-Token")
    verifier = getattr(state, "user_tokens", None)
    token = request.headers.get(header, "").strip()
    if not token:
        return None
    if verifier is None:
        raise AuthenticationError(f"user tokens are not configured on this server: drop the {header} header")
    return verifier.verify(token.removeprefix("Bearer ").strip())


# How read routes that take no body receive the assertion (``?principal_id=alice&role=sales``).
PrincipalId = Annotated[
    str | None, Query(min_length=1, max_length=256, examples=["alice"], description="omit: no particular user")
]
Roles = Annotated[list[str], Query(max_length=64, examples=[["sales"]])]
