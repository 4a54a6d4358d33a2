"""Verified end users for the prober: a test identity provider (an RSA key pair in the scratch dir) whose
signed tokens, good and bad, ride along a service key.

The oracle's reading of CONTRACT §6: a valid token makes its ``sub`` the principal and its groups (through
the role map) the roles; a body assertion may repeat the subject and narrow the roles, never widen or
rename them; an invalid token (expired, wrong issuer or audience, ``alg: none``, another key) is a 401 and
grants nothing. Enabled only when Settings knows the ``jwt_*`` fields (the identity change).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path

from evaluation.leaks_corpus import ROLES, USERS

ISSUER, AUDIENCE, CLAIM = "https://idp.leaks.example", "stitch-leaks", "groups"
ROLE_MAP = {f"grp-{role}": (role,) for role in ROLES}
BAD_KINDS = ("expired", "wrong_issuer", "wrong_audience", "alg_none", "other_key", "no_sub")


def supported() -> bool:
    from core.config import Settings

    return "jwt_public_key_file" in Settings.model_fields


@dataclass(frozen=True)
class UserToken:
    """One token as sent, and what the oracle says it proves (None: nothing, it must be refused)."""

    token: str
    subject: str
    roles: tuple[str, ...] | None
    kind: str = "valid"
    header: str = "X-Stitch-User-Token"


class TestIdentityProvider:
    """Signs tokens with its own key; ``settings_fields`` point Stitch at the public half."""

    def __init__(self, folder: Path, *, header: str = "X-Stitch-User-Token") -> None:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        folder.mkdir(parents=True, exist_ok=True)
        self.header = header
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.public_key_file = folder / "idp-public.pem"
        self.public_key_file.write_bytes(self._key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))

    def settings_fields(self) -> dict:
        return {"jwt_public_key_file": self.public_key_file, "jwt_issuer": ISSUER, "jwt_audience": AUDIENCE,
                "jwt_roles_claim": CLAIM, "jwt_role_map": ROLE_MAP, "jwt_algorithms": ("RS256",)}

    def token(self, rng: random.Random) -> UserToken:
        import jwt

        subject = rng.choice([*USERS, "alice", "mallory"])
        groups = rng.sample(sorted(ROLE_MAP) + ["grp-unknown", "exec"], k=rng.randint(0, 3))
        now = int(time.time())
        claims = {"sub": subject, "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 3600, CLAIM: groups}
        kind = rng.choice(BAD_KINDS) if rng.random() < 0.25 else "valid"
        key = self._other if kind == "other_key" else self._key
        claims.update({"expired": {"exp": now - 3600, "iat": now - 7200}, "wrong_issuer": {"iss": "https://evil"},
                       "wrong_audience": {"aud": "other-app"}}.get(kind, {}))
        if kind == "no_sub":
            claims.pop("sub")
        if kind == "alg_none":
            token = jwt.encode(claims, None, algorithm="none")
        else:
            token = jwt.encode(claims, key, algorithm="RS256")
        roles = tuple(dict.fromkeys(r for g in groups for r in ROLE_MAP.get(g, ()))) if kind == "valid" else None
        return UserToken(token, subject, roles, kind, self.header)
