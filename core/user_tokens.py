"""Verified end-user identity: an OIDC/JWT access or ID token, verified with PyJWT against the identity
provider's public keys (a JWKS file, looked up by ``kid``, and/or one PEM public key).

Checked: signature, an asymmetric algorithm allow-list (never ``none``, never HS*), ``iss``, ``aud``,
``exp`` (required, with a small leeway), ``nbf``/``iat`` when present, ``sub`` as a principal id.
Roles come only from the configured claim through ``jwt_role_map``; unmapped values are ignored.
Every failure is an AuthenticationError with a fixed message: the token is never echoed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt

from core.access import check_user_id
from core.config import Settings
from core.errors import AuthenticationError, ConfigurationError, InputError
from core.identity import VerifiedUser

_REFUSED = "invalid user token"
# PyJWT's own messages can quote header values; ours are fixed phrases per failure class.
_REASONS: tuple[tuple[type[Exception], str], ...] = (
    (jwt.ExpiredSignatureError, "it has expired"),
    (jwt.InvalidIssuerError, "its issuer is not the configured issuer"),
    (jwt.InvalidAudienceError, "its audience does not include this service"),
    (jwt.ImmatureSignatureError, "it is not valid yet"),
    (jwt.InvalidAlgorithmError, "its algorithm is not allowed"),
    (jwt.InvalidSignatureError, "its signature does not verify"),
    (jwt.InvalidKeyError, "its signature does not verify with the key it names"),
    (jwt.DecodeError, "it is malformed"),
)


@dataclass(frozen=True)
class TokenPolicy:
    """What a user token must satisfy (built from the identity section of Settings)."""

    issuer: str
    audience: str
    algorithms: tuple[str, ...]
    leeway_seconds: float
    roles_claim: str
    role_map: Mapping[str, tuple[str, ...]]


class _KeyFile:
    """A key file re-read when it changes on disk (keys rotate at the identity provider)."""

    def __init__(self, path: Path, parse) -> None:  # noqa: ANN001 - parse: bytes -> key material
        self._path, self._parse = Path(path), parse
        self._mtime: float | None = None
        self._value: Any = None
        self.get()  # fail at startup, not on the first request

    def get(self) -> Any:
        try:
            mtime = self._path.stat().st_mtime
            if mtime != self._mtime:
                self._value, self._mtime = self._parse(self._path.read_bytes()), mtime
        except (OSError, ValueError, TypeError, jwt.PyJWKError, jwt.PyJWKSetError) as exc:
            raise ConfigurationError(f"{self._path}: not a usable key file ({type(exc).__name__})") from exc
        return self._value


# Which algorithm names fit a PEM key, by the key's class (a key of one family never verifies another's).
_FAMILY = {"RSAPublicKey": ("RS", "PS"), "EllipticCurvePublicKey": ("ES",), "Ed25519PublicKey": ("EdDSA",),
           "Ed448PublicKey": ("EdDSA",)}


def _family(key: Any) -> tuple[str, ...]:
    return next((f for name, f in _FAMILY.items() if any(c.__name__ == name for c in type(key).__mro__)), ())


def _jwks(data: bytes) -> dict[str, jwt.PyJWK]:
    keys = jwt.PyJWKSet.from_dict(json.loads(data)).keys
    return {k.key_id: k for k in keys if k.key_id}


def _pem(data: bytes) -> Any:
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    return load_pem_public_key(data)


class UserTokenVerifier:
    """Turns a user token into a VerifiedUser, or raises AuthenticationError (HTTP 401)."""

    def __init__(self, policy: TokenPolicy, *, jwks_file: Path | None, public_key_file: Path | None) -> None:
        if jwks_file is None and public_key_file is None:
            raise ConfigurationError("user tokens need jwt_jwks_file or jwt_public_key_file")
        self.policy = policy
        self._jwks = _KeyFile(jwks_file, _jwks) if jwks_file else None
        self._pem = _KeyFile(public_key_file, _pem) if public_key_file else None

    @classmethod
    def from_settings(cls, settings: Settings) -> UserTokenVerifier | None:
        """The verifier the settings describe, or None when no token keys are configured."""
        if not (settings.jwt_jwks_file or settings.jwt_public_key_file):
            return None
        policy = TokenPolicy(
            settings.jwt_issuer or "", settings.jwt_audience or "", settings.jwt_algorithms,
            settings.jwt_leeway_seconds, settings.jwt_roles_claim, settings.jwt_role_map,
        )
        return cls(policy, jwks_file=settings.jwt_jwks_file, public_key_file=settings.jwt_public_key_file)

    def verify(self, token: str) -> VerifiedUser:
        """The token's subject and mapped roles after every check."""
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") not in self.policy.algorithms:  # before any key lookup: `none`, HS*
                raise jwt.InvalidAlgorithmError("not allowed")
            key, algorithms = self._key_for(header)
            if header["alg"] not in algorithms:
                raise jwt.InvalidAlgorithmError("not allowed for this key")
            claims = jwt.decode(
                token, key, algorithms=algorithms,
                audience=self.policy.audience, issuer=self.policy.issuer, leeway=self.policy.leeway_seconds,
                options={"require": ["exp", "iss", "aud", "sub"], "verify_iat": True},
            )
        except jwt.MissingRequiredClaimError as exc:
            raise AuthenticationError(f"{_REFUSED}: it lacks the '{exc.claim}' claim") from None
        except jwt.PyJWTError as exc:
            reason = next((r for cls, r in _REASONS if isinstance(exc, cls)), "it does not verify")
            raise AuthenticationError(f"{_REFUSED}: {reason}") from None
        return VerifiedUser(self._subject(claims), self._roles(claims))

    def _key_for(self, header: dict) -> tuple[Any, list[str]]:
        """The verification key the token names, and the allowed algorithms that fit that key."""
        kid = header.get("kid")
        keys = self._jwks.get() if self._jwks else {}
        if kid is not None:
            if not isinstance(kid, str) or kid not in keys:
                raise AuthenticationError(f"{_REFUSED}: its key id (kid) is not one of the configured keys")
            jwk = keys[kid]
        elif self._pem is not None:
            pem = self._pem.get()
            return pem, [a for a in self.policy.algorithms if a.startswith(_family(pem))]
        elif len(keys) == 1:
            jwk = next(iter(keys.values()))
        else:
            raise AuthenticationError(f"{_REFUSED}: it names no key id (kid) and several keys are configured")
        return jwk, [a for a in self.policy.algorithms if a == jwk.algorithm_name]

    @staticmethod
    def _subject(claims: dict) -> str:
        try:
            return check_user_id(claims.get("sub"), where="sub")
        except InputError:
            raise AuthenticationError(
                f"{_REFUSED}: its 'sub' claim is not a valid principal id "
                "(1-128 letters, digits, '_', '.', '@', '+' or '-')"
            ) from None

    def _roles(self, claims: dict) -> tuple[str, ...]:
        value: Any = claims
        for part in self.policy.roles_claim.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        values = [value] if isinstance(value, str) else value if isinstance(value, list) else []
        mapped = (r for v in values if isinstance(v, str) for r in self.policy.role_map.get(v, ()))
        return tuple(dict.fromkeys(mapped))
