"""Access-control tokens (onyx-style prefixed strings) stamped on chunks and put into every query.

A principal sees a chunk iff the principal's token set intersects the chunk's ``acl`` tokens.
A chunk with no tokens is invisible to everyone (deny by default).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from core.errors import InputError
from core.models import Principal

PUBLIC_TOKEN = "public"
# One grammar for role names at every edge (manifests, record fields, HTTP, keys, token claims):
# no spaces, commas or semicolons, so a role can never be two roles joined, nor a token prefix.
ROLE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
USER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,127}$")


def check_role(role: object, *, where: str) -> str:
    """``role`` if it is a valid role name, else InputError naming ``where`` and the value."""
    if not isinstance(role, str) or not ROLE_NAME.match(role):
        raise InputError(
            f"{where}: invalid role {str(role)[:80]!r} (a role is 1-64 letters, digits, '_', '.' or '-'; "
            "give several roles as a list)"
        )
    return role


def check_user_id(user_id: object, *, where: str) -> str:
    """``user_id`` if it is a valid principal id, else InputError naming ``where`` and the value."""
    if not isinstance(user_id, str) or not USER_ID.match(user_id):
        raise InputError(
            f"{where}: invalid principal id {str(user_id)[:80]!r} "
            "(1-128 letters, digits, '_', '.', '@', '+' or '-')"
        )
    return user_id


def role_token(role: str) -> str:
    """Token for a data role, e.g. ``role:sales``."""
    return f"role:{role.strip()}"


def user_token(user_id: str) -> str:
    """Token for one user, e.g. ``user:alice``."""
    return f"user:{user_id.strip()}"


def acl_tokens_for_roles(roles: Iterable[str], *, public: bool = False) -> tuple[str, ...]:
    """Tokens for a document readable by ``roles``; ``user:<id>`` entries pass through as user tokens."""
    tokens: set[str] = set()
    for raw in roles:
        role = str(raw).strip()
        if not role:
            continue
        if role == PUBLIC_TOKEN:
            tokens.add(PUBLIC_TOKEN)
        elif role.startswith("user:"):
            tokens.add(user_token(role[len("user:"):]))
        else:
            tokens.add(role_token(role))
    if public:
        tokens.add(PUBLIC_TOKEN)
    return tuple(sorted(tokens))


def principal_tokens(principal: Principal) -> tuple[str, ...]:
    """The token set a principal's requests are filtered by: its roles, its user id, and ``public``.

    The principal was decided by ``core.identity`` (its id is one the caller may assert), so its id is trusted.
    """
    tokens = {role_token(r) for r in principal.roles if r.strip()}
    if principal.id and principal.id.strip():
        tokens.add(user_token(principal.id))
    tokens.add(PUBLIC_TOKEN)
    return tuple(sorted(tokens))


def is_visible(acl: Iterable[str], tokens: Iterable[str]) -> bool:
    """Same rule as the store filter, for places that already hold a payload (defence in depth)."""
    return bool(set(acl) & set(tokens))


def check_acl_entry(entry: object, *, where: str) -> str:
    """One ACL entry of a manifest or record field: a role name, ``public`` or ``user:<id>``."""
    if isinstance(entry, str) and entry.startswith("user:"):
        check_user_id(entry[len("user:"):], where=where)
        return entry
    return check_role(entry, where=where)


def parse_role_list(value: object, *, where: str) -> tuple[str, ...]:
    """A per-record roles field: a JSON list, or one text of roles separated by ';' or ','.

    Every entry is checked (``"sales exec"`` is an error, never one role); an empty value gives ().
    """
    if value is None:
        return ()
    if isinstance(value, (list, tuple)):
        items = [str(v).strip() if isinstance(v, (str, int)) else v for v in value]
    elif isinstance(value, str):
        items = [part.strip() for part in re.split(r"[;,]", value)]
    else:
        raise InputError(f"{where}: must be a list of roles or a text such as \"sales;exec\", "
                         f"got {type(value).__name__}")
    return tuple(check_acl_entry(item, where=where) for item in items if item != "")
