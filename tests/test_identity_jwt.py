"""Verified end-user identity: real tokens signed in the test with fresh RSA and EC key pairs, verified
with PyJWT against a JWKS file (and a PEM public key); every forged or stale token is a 401 that never
echoes the token."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pydantic import ValidationError

from api.keys import KeyStore
from core.config import Settings
from tests.test_identity_keys import CANARY, build_index, read

ISSUER, AUDIENCE, HEADER = "https://idp.example", "stitch", "X-Stitch-User-Token"
ROLE_MAP = {"grp-sales": ["sales"], "grp-support": ["support", "sales"]}


@pytest.fixture(scope="module")
def idp(tmp_path_factory):
    """An identity provider: RSA and EC signing keys published in a JWKS file, plus a stranger's key."""
    folder = tmp_path_factory.mktemp("idp")
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    jwks = {"keys": [
        {**jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key.public_key(), as_dict=True), "kid": "rsa-1", "alg": "RS256"},
        {**jwt.algorithms.ECAlgorithm.to_jwk(ec_key.public_key(), as_dict=True), "kid": "ec-1", "alg": "ES256"},
    ]}
    (folder / "jwks.json").write_text(json.dumps(jwks))
    pem = rsa_key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    (folder / "public.pem").write_bytes(pem)
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return {"rsa": rsa_key, "ec": ec_key, "pem": pem, "stranger": stranger, "folder": folder}


@pytest.fixture(scope="module")
def served(tmp_path_factory, encoder, idp):
    client, services = build_index(
        tmp_path_factory.mktemp("jwt"), encoder, jwt_jwks_file=idp["folder"] / "jwks.json", jwt_issuer=ISSUER,
        jwt_audience=AUDIENCE, jwt_roles_claim="groups", jwt_role_map=ROLE_MAP,
    )
    keys = KeyStore(services.settings.keys_path)
    # A forwarding key: the scope only; no roles and no principal ids of its own to assert.
    forwarder = keys.create(scopes=("context",), roles=(), name="forwarder")
    with client:
        yield client, forwarder, keys
    services.store.close()


def _claims(**overrides) -> dict:
    now = int(time.time())
    return {"sub": "dana", "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 300,
            "groups": ["grp-sales", "grp-unmapped"], **overrides}


def _sign(idp, claims=None, *, key="rsa", kid="rsa-1", alg=None) -> str:
    alg = alg or ("ES256" if key == "ec" else "RS256")
    return jwt.encode(claims or _claims(), idp[key], algorithm=alg, headers={"kid": kid} if kid else None)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _forge(header: dict, claims: dict, sign) -> str:
    """A token PyJWT would refuse to make: the signature is whatever ``sign`` returns for the input."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    return f"{signing_input}.{_b64(sign(signing_input.encode()))}"


def _as_user(client, key, token, route="context", principal_id=None, roles=()):
    return read(client, key, route, principal_id, roles=roles, headers={HEADER: token})


@pytest.mark.parametrize("key, kid", [("rsa", "rsa-1"), ("ec", "ec-1")])
@pytest.mark.parametrize("route", ["context", "search", "documents"])
def test_a_verified_user_reads_what_the_token_grants(served, idp, key, kid, route):
    client, forwarder, _ = served
    response = _as_user(client, forwarder, _sign(idp, key=key, kid=kid), route)
    assert response.status_code == 200, response.text
    assert CANARY in response.text  # user:dana, from the verified subject


def test_token_roles_come_from_the_mapped_claim_only(served, idp):
    client, forwarder, _ = served
    as_sales = _as_user(client, forwarder, _sign(idp, _claims(sub="erin")), "search").json()
    assert {h["doc_id"] for h in as_sales["hits"]} == {"notes:handbook.md"}  # sales, not user:dana
    unmapped = _as_user(client, forwarder, _sign(idp, _claims(sub="erin", groups=["sales", "admin"])), "search")
    assert unmapped.status_code == 200 and unmapped.json()["hits"] == []  # raw claim values are not roles


def _bad_tokens(idp) -> dict[str, str]:
    now = int(time.time())
    hs_with_public_key = _forge({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}, _claims(),
                                lambda m: hmac.new(idp["pem"], m, hashlib.sha256).digest())
    return {
        "expired": _sign(idp, _claims(exp=now - 120, iat=now - 600)),
        "issuer": _sign(idp, _claims(iss="https://evil.example")),
        "audience": _sign(idp, _claims(aud="another-service")),
        "alg none": _forge({"alg": "none", "typ": "JWT"}, _claims(), lambda m: b""),
        "alg none with kid": _forge({"alg": "none", "kid": "rsa-1"}, _claims(), lambda m: b""),
        "HS256 with the public key": hs_with_public_key,
        "unknown kid": _sign(idp, kid="rsa-9"),
        "bad signature": _sign(idp, key="stranger", kid="rsa-1"),
        "no expiry": _sign(idp, {k: v for k, v in _claims().items() if k != "exp"}),
        "garbage": "Z2FyYmFnZQ.Zm9v.c2lnbmF0dXJl",
        "bad subject": _sign(idp, _claims(sub="dana erin")),
    }


EXPECTED_WORDS = {"expired": "expired", "issuer": "issuer", "audience": "audience", "alg none": "algorithm",
                  "alg none with kid": "algorithm", "HS256 with the public key": "algorithm", "unknown kid": "key id",
                  "bad signature": "signature", "no expiry": "exp", "garbage": "malformed", "bad subject": "sub"}


@pytest.mark.parametrize("case", sorted(EXPECTED_WORDS))
def test_a_bad_user_token_is_a_401_that_does_not_echo_it(served, idp, case):
    client, forwarder, _ = served
    token = _bad_tokens(idp)[case]
    for route in ("context", "documents", "entities"):
        response = _as_user(client, forwarder, token, route)
        assert response.status_code == 401, (case, response.text)
        message = response.json()["error"]["message"]
        assert "user token" in message and EXPECTED_WORDS[case] in message, (case, message)
        assert all(part not in response.text for part in token.split(".") if part)
        assert CANARY not in response.text


def test_a_body_principal_may_narrow_but_never_contradict_the_token(served, idp):
    client, forwarder, _ = served
    token = _sign(idp, _claims(groups=["grp-support"]))
    renamed = _as_user(client, forwarder, token, principal_id="erin")
    assert renamed.status_code == 403 and "disagrees" in renamed.json()["error"]["message"]
    widened = _as_user(client, forwarder, token, principal_id="dana", roles=("finance",))
    assert widened.status_code == 403 and "finance" in widened.json()["error"]["message"]
    narrowed = _as_user(client, forwarder, token, "search", principal_id="dana", roles=("support",))
    assert narrowed.status_code == 200
    assert "notes:handbook.md" not in {h["doc_id"] for h in narrowed.json()["hits"]}  # sales dropped


def test_a_verified_users_only_key_needs_a_token(served, idp):
    client, _, keys = served
    strict = keys.create(scopes=("context",), roles=("sales",), principals=("*",), verified_users_only=True)
    refused = read(client, strict, "context", "dana")
    assert refused.status_code == 403 and "verified" in refused.json()["error"]["message"]
    assert CANARY in _as_user(client, strict, _sign(idp)).text


def test_a_token_still_needs_a_key_with_the_scope(served, idp):
    client, _, keys = served
    ingest_only = keys.create(scopes=("ingest",), roles=())
    assert _as_user(client, ingest_only, _sign(idp)).status_code == 403
    no_key = client.post("/v1/context", json={"query": "x"}, headers={HEADER: _sign(idp)})
    assert no_key.status_code == 401


def test_a_pem_public_key_verifies_tokens_without_a_kid(tmp_path, encoder, idp):
    client, services = build_index(tmp_path, encoder, jwt_public_key_file=idp["folder"] / "public.pem",
                                   jwt_issuer=ISSUER, jwt_audience=AUDIENCE, jwt_role_map=ROLE_MAP)
    key = KeyStore(services.settings.keys_path).create(scopes=("context",), roles=())
    try:
        with client:
            assert CANARY in _as_user(client, key, _sign(idp, kid=None)).text
            assert _as_user(client, key, _sign(idp, key="stranger", kid=None)).status_code == 401
            assert _as_user(client, key, _sign(idp, key="ec", kid=None)).status_code == 401
    finally:
        services.store.close()


def test_without_configured_keys_a_user_token_is_refused(tmp_path, encoder, idp):
    client, services = build_index(tmp_path, encoder)
    key = KeyStore(services.settings.keys_path).create(scopes=("context",), roles=("sales",))
    try:
        with client:
            response = _as_user(client, key, _sign(idp))
            assert response.status_code == 401 and "not configured" in response.json()["error"]["message"]
    finally:
        services.store.close()


@pytest.mark.parametrize("fields, word", [
    ({"jwt_algorithms": ["HS256"]}, "HS256"),
    ({"jwt_algorithms": ["none"]}, "none"),
    ({"jwt_role_map": {"grp": ["sales,exec"]}}, "sales,exec"),
    ({"jwt_issuer": None}, "jwt_issuer"),
    ({"jwt_audience": None}, "jwt_audience"),
])
def test_identity_settings_are_checked(tmp_path, fields, word):
    base = {"jwt_jwks_file": tmp_path / "jwks.json", "jwt_issuer": ISSUER, "jwt_audience": AUDIENCE}
    with pytest.raises(ValidationError, match=word):
        Settings(data_dir=tmp_path, **{**base, **fields})
