"""JWT bearer tokens: end to end on the `strict` server (HS256), and RS256 and ES256 keys read
from PEM files by the verifier itself. Tokens are made with PyJWT and real keys."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pydantic import ValidationError

from auth.exceptions import Unauthenticated
from auth.identity import IdentityKind
from auth.scopes import Scope
from auth.tokens import JwtVerifier
from service.settings import Settings
from tests.api_keys import unique_name
from tests.security.conftest import AUDIENCE, ISSUER, JWT_SECRET, client

INVALID = 'Bearer realm="observer-eye", error="invalid_token"'


def token(key=JWT_SECRET, algorithm="HS256", **claims) -> str:
    now = int(time.time())
    payload = {"iss": ISSUER, "aud": AUDIENCE, "sub": "dana", "iat": now, "exp": now + 300}
    payload |= claims
    return jwt.encode({k: v for k, v in payload.items() if v is not None}, key, algorithm)


def bearer(text: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {text}"}


def test_a_valid_token_s_subject_is_the_audit_actor(strict, strict_admin) -> None:
    subject = unique_name("dana")
    headers = bearer(token(sub=subject, scope="crud:write crud:read openid"))
    with client(strict, headers) as dashboard:
        me = dashboard.get("/auth/me").json()["data"]
        created = dashboard.post(
            "/api/core/configurations/", json={"key": unique_name("jwt"), "value": 1}
        )
    trail = strict_admin.get("/audit", params={"actor": f"jwt:{subject}"}).json()["data"]

    assert me == {"name": subject, "kind": "jwt", "scopes": ["crud:read", "crud:write"]}
    assert created.status_code == 201
    assert [(e["operation"], e["entity_id"]) for e in trail] == [
        ("create", created.json()["data"]["id"])
    ]


@pytest.mark.parametrize("subject", ["admin-env", "admin", "anonymous", "command-line"])
def test_a_subject_named_like_a_key_cannot_act_as_that_key_in_the_trail(
    strict, strict_admin, subject
) -> None:
    # A key's name never holds ':', so `jwt:<subject>` can be no key's or reserved name.
    key = unique_name("jwt-clash")
    with client(strict, bearer(token(sub=subject, scope="crud:write"))) as dashboard:
        me = dashboard.get("/auth/me").json()["data"]
        created = dashboard.post("/api/core/configurations/", json={"key": key, "value": 1})
    entity_id = created.json()["data"]["id"]
    trail = strict_admin.get("/audit", params={"entity_id": entity_id}).json()["data"]

    assert me == {"name": subject, "kind": "jwt", "scopes": ["crud:write"]}
    assert [(e["actor"], e["operation"]) for e in trail] == [(f"jwt:{subject}", "create")]


@pytest.mark.parametrize(
    ("subject", "detail"),
    [
        ("dana\nadmin-env", "The bearer token's subject holds a control character."),
        ("dana\x1b[31m", "The bearer token's subject holds a control character."),
        ("dana\x85", "The bearer token's subject holds a control character."),
        ("dana\u202eadmin", "The bearer token's subject holds a control character."),
        ("d" * 197, "The bearer token's subject is longer than 196 characters."),
        ("", "The bearer token's subject is not a name."),
        (7, "The bearer token is not valid."),  # PyJWT refuses a subject that is no string
    ],
    ids=["newline", "escape", "c1-control", "bidi-override", "too-long", "empty", "number"],
)
def test_a_subject_that_could_not_be_an_audit_actor_is_refused(strict, subject, detail) -> None:
    with client(strict, bearer(token(sub=subject))) as dashboard:
        refused = dashboard.get("/auth/me")

    assert (refused.status_code, refused.json()["detail"]) == (401, detail)
    assert refused.headers["WWW-Authenticate"] == INVALID


def test_the_longest_subject_still_fits_the_actor_column(strict, strict_admin) -> None:
    subject = "d" * 196
    with client(strict, bearer(token(sub=subject, scope="crud:write"))) as dashboard:
        created = dashboard.post(
            "/api/core/configurations/", json={"key": unique_name("long-sub"), "value": 1}
        )
    entity_id = created.json()["data"]["id"]
    [entry] = strict_admin.get("/audit", params={"entity_id": entity_id}).json()["data"]

    assert created.status_code == 201
    assert entry["actor"] == f"jwt:{subject}"


def test_scopes_may_come_as_a_list_and_unknown_ones_count_for_nothing(strict) -> None:
    listed = bearer(token(scope=["telemetry:read", "email"]))
    only_foreign = bearer(token(scope="openid profile"))
    with client(strict) as dashboard:
        me = dashboard.get("/auth/me", headers=listed).json()["data"]
        refused = dashboard.get("/telemetry/metrics", headers=only_foreign)

    assert me["scopes"] == ["telemetry:read"]
    assert (refused.status_code, refused.json()["required_scopes"]) == (403, ["telemetry:read"])


@pytest.mark.parametrize(
    ("made", "detail"),
    [
        (lambda: token(exp=int(time.time()) - 1), "The bearer token has expired."),
        (lambda: token(key="another-secret-0123456789abcdefghijkl"),
         "The bearer token's signature does not verify."),
        (lambda: token(aud="someone-else"), "The bearer token is for another audience."),
        (lambda: token(iss="https://evil.test/"), "The bearer token is from another issuer."),
        (lambda: token(exp=None), "The bearer token lacks a required claim."),
        (lambda: token(sub=None), "The bearer token lacks a required claim."),
        (lambda: token(key=None, algorithm="none"), "The bearer token is not valid."),
        (lambda: "not.a.token", "The bearer token is not valid."),
    ],
    ids=["expired", "other-key", "other-audience", "other-issuer", "no-exp", "no-sub",
         "alg-none", "garbage"],
)  # fmt: skip
def test_a_bad_token_is_refused(strict, strict_admin, made, detail) -> None:
    agent = unique_name("agent")
    with client(strict, {**bearer(made()), "User-Agent": agent}) as caller:
        refused = caller.get("/auth/me")

    assert (refused.status_code, refused.headers["WWW-Authenticate"]) == (401, INVALID)
    assert refused.json()["detail"] == detail
    trail = strict_admin.get("/audit", params={"operation": "authenticate"}).json()["data"]
    mine = [e for e in trail if e["user_agent"] == agent]
    assert [(e["actor"], e["entity_type"], e["status_code"]) for e in mine] == [
        ("anonymous", "GET /auth/me", 401)
    ]


# --- the verifier with public keys, in-process ------------------------------------------------


def _pem(public_key) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _hmac_token(secret: bytes) -> str:
    def part(data: bytes) -> bytes:
        return base64.urlsafe_b64encode(data).rstrip(b"=")

    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "eve", "exp": int(time.time()) + 60}
    signed = part(b'{"alg":"HS256","typ":"JWT"}') + b"." + part(json.dumps(claims).encode())
    signature = hmac.new(secret, signed, hashlib.sha256).digest()
    return (signed + b"." + part(signature)).decode()


def _verifier(tmp_path: Path, public_key) -> JwtVerifier:
    path = tmp_path / "issuer.pem"
    path.write_bytes(_pem(public_key))
    settings = Settings(
        data_dir=tmp_path,
        auth_jwt_public_key_file=path,
        auth_jwt_issuer=ISSUER,
        auth_jwt_audience=AUDIENCE,
    )
    verifier = JwtVerifier.from_settings(settings)
    assert verifier is not None
    return verifier


@pytest.mark.parametrize(
    ("private_key", "algorithm"),
    [
        (rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS256"),
        (ec.generate_private_key(ec.SECP256R1()), "ES256"),
    ],
    ids=["RS256", "ES256"],
)
def test_a_public_key_verifies_its_own_algorithm_only(tmp_path, private_key, algorithm) -> None:
    verifier = _verifier(tmp_path, private_key.public_key())

    identity = verifier.verify(token(key=private_key, algorithm=algorithm, scope="admin"))
    assert (identity.name, identity.kind, identity.scopes) == (
        "dana",
        IdentityKind.JWT,
        frozenset({Scope.ADMIN}),
    )
    # Algorithm confusion: an HS256 token whose HMAC secret is the public key itself. PyJWT
    # will not sign one, so it is put together by hand as an attacker would.
    confused = _hmac_token(_pem(private_key.public_key()))
    with pytest.raises(Unauthenticated, match="^The bearer token is not valid.$"):
        verifier.verify(confused)
    other = ec.generate_private_key(ec.SECP256R1()) if algorithm == "ES256" else None
    if other is not None:
        with pytest.raises(Unauthenticated, match="signature does not verify"):
            verifier.verify(token(key=other, algorithm="ES256"))


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"auth_jwt_secret": "short"}, "OBSERVER_AUTH_JWT_SECRET needs 32 characters or more"),
        ({"admin_api_key": "short"}, "OBSERVER_ADMIN_API_KEY needs 32 characters or more"),
        ({"auth_jwt_secret": JWT_SECRET}, "JWT needs OBSERVER_AUTH_JWT_ISSUER"),
        (
            {"auth_jwt_secret": JWT_SECRET, "auth_jwt_issuer": ISSUER,
             "auth_jwt_audience": AUDIENCE, "auth_jwt_algorithms": ["RS256"]},
            "a JWT secret verifies only HMAC algorithms",
        ),
        (
            {"auth_jwt_public_key_file": "issuer.pem", "auth_jwt_issuer": ISSUER,
             "auth_jwt_audience": AUDIENCE, "auth_jwt_algorithms": ["HS256"]},
            "a JWT public key cannot verify HMAC algorithms",
        ),
        (
            {"auth_jwt_public_key_file": "issuer.pem", "auth_jwt_issuer": ISSUER,
             "auth_jwt_audience": AUDIENCE, "auth_jwt_algorithms": ["RS256", "none"]},
            "'none' cannot be among OBSERVER_AUTH_JWT_ALGORITHMS",
        ),
        (
            {"auth_jwt_secret": JWT_SECRET, "auth_jwt_issuer": ISSUER,
             "auth_jwt_audience": AUDIENCE, "auth_jwt_algorithms": ["HS256", "None"]},
            "'none' cannot be among OBSERVER_AUTH_JWT_ALGORITHMS",
        ),
        ({"auth_failure_rate_limit": "often"}, "not a rate limit"),
    ],
    ids=["short-secret", "short-admin-key", "no-issuer", "secret-rs256", "key-hs256",
         "key-none", "secret-none", "limit"],
)  # fmt: skip
def test_unsound_authentication_settings_stop_the_start(settings, message) -> None:
    with pytest.raises(ValidationError, match=message):
        Settings(**settings)
