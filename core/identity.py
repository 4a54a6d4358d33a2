"""Who a request is for, decided in one place.

A credential (an API key) carries a *grant*: the roles and the principal ids its holder may assert.
A caller's *assertion* (``{"id": "alice", "roles": ["sales"]}``) becomes a ``Principal`` only within
that grant; a *verified user* (a signed end-user token) becomes one on its own authority. Everything
downstream receives the ``Principal`` and trusts it: ``principal_tokens`` adds ``user:<id>`` for it.

Principal-id patterns are fnmatch-style globs (``*``, ``?``, ``[abc]``) matched case-sensitively
against the whole id: ``svc-*`` allows ``svc-reports`` but not ``my-svc-x``. ``*`` alone means any id.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Protocol

from core.access import check_role, check_user_id
from core.errors import InputError, PermissionDeniedError
from core.models import Principal

ANY = "*"
_PATTERN = re.compile(r"^[A-Za-z0-9_.@+\-*?\[\]!]{1,128}$")


class Grant(Protocol):
    """What a credential lets its holder assert (``api.keys.ApiKey`` is one)."""

    roles: tuple[str, ...]
    principals: tuple[str, ...]
    verified_users_only: bool


@dataclass(frozen=True)
class Assertion:
    """What the caller says the principal is; ``id`` None means "no particular user"."""

    id: str | None = None
    roles: tuple[str, ...] = ()


@dataclass(frozen=True)
class VerifiedUser:
    """An end user whose signed token was verified: subject and the Stitch roles its claims map to."""

    subject: str
    roles: tuple[str, ...]


def check_principal_pattern(pattern: object, *, where: str) -> str:
    """``pattern`` if it is ``*``, a valid principal id, or a glob over id characters; else InputError."""
    if not isinstance(pattern, str) or not _PATTERN.match(pattern):
        raise InputError(
            f"{where}: invalid principal id or pattern {str(pattern)[:80]!r} (an id, a glob such as 'svc-*', "
            "or '*' for any; give several as a list)"
        )
    if not any(c in pattern for c in "*?["):
        check_user_id(pattern, where=where)
    return pattern


def check_key_role(role: object, *, where: str) -> str:
    """A role a key may assert: a role name or ``*`` (any role)."""
    return ANY if role == ANY else check_role(role, where=where)


def may_assert_id(patterns: tuple[str, ...], principal_id: str) -> bool:
    """True if some pattern allows ``principal_id`` (no patterns: no id at all)."""
    return any(p == ANY or fnmatchcase(principal_id, p) for p in patterns)


def check_assertion(principal_id: str | None, roles: list[str] | tuple[str, ...], *, where: str) -> Assertion:
    """Validate a caller's assertion at an edge (InputError naming the bad value)."""
    if principal_id is not None:
        check_user_id(principal_id, where=f"{where} principal id")
    checked = tuple(dict.fromkeys(check_role(r, where=f"{where} role") for r in roles))
    return Assertion(principal_id, checked)


def decide_principal(grant: Grant, asserted: Assertion, *, verified: VerifiedUser | None = None) -> Principal:
    """The principal of a request: the verified user if any, else the assertion within the grant (403)."""
    if verified is not None:
        return _verified_principal(asserted, verified)
    if grant.verified_users_only:
        raise PermissionDeniedError("this API key only forwards verified users: send the user's token")
    if ANY not in grant.roles:
        extra = sorted(set(asserted.roles) - set(grant.roles))
        if extra:
            raise PermissionDeniedError(f"this API key may not assert role(s): {', '.join(extra)}")
    if asserted.id is not None and not may_assert_id(grant.principals, asserted.id):
        raise PermissionDeniedError(f"this API key may not assert principal id {asserted.id!r}")
    return Principal(asserted.id or "", asserted.roles)


def _verified_principal(asserted: Assertion, verified: VerifiedUser) -> Principal:
    """A body principal may repeat the verified one or narrow its roles, never widen or rename it."""
    if asserted.id is not None and asserted.id != verified.subject:
        raise PermissionDeniedError(
            f"principal id {asserted.id!r} disagrees with the verified user token's subject"
        )
    extra = sorted(set(asserted.roles) - set(verified.roles))
    if extra:
        raise PermissionDeniedError(f"the verified user token does not grant role(s): {', '.join(extra)}")
    return Principal(verified.subject, asserted.roles or verified.roles)
